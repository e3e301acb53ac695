package local

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// File names in the directory.
const (
	metaPropertiesFile = "meta.properties"
	metadataFile       = "cluster-metadata.json"
	tmpSuffix          = coordination.TmpSuffix
	lockFile           = ".lock"
	formatVersion      = 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// diskState is the JSON body of cluster-metadata.json.
type diskState struct {
	ClusterID       string      `json:"cluster_id"`
	BrokerID        int32       `json:"broker_id"`
	MetadataVersion int64       `json:"metadata_version"`
	NextProducerID  int64       `json:"next_producer_id"`
	Topics          []diskTopic `json:"topics"`
}

type diskTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Internal   bool              `json:"internal"`
	Configs    map[string]string `json:"configs,omitempty"`
	Partitions []diskPartition   `json:"partitions"`
}

type diskPartition struct {
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
}

// encodeState renders the metadata file: header line, then JSON.
func encodeState(s *diskState) ([]byte, error) {
	body, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	body = append(body, '\n')
	header := fmt.Sprintf("# strata cluster metadata v%d crc32c=%08x\n", formatVersion, crc32.Checksum(body, castagnoli))
	return append([]byte(header), body...), nil
}

// errCorrupt marks a metadata file that cannot be trusted.
var errCorrupt = errors.New("corrupt cluster metadata")

// decodeState parses and checks the metadata file.
func decodeState(data []byte) (*diskState, error) {
	header, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no header line (truncated?)", errCorrupt)
	}
	var version int
	var sum uint32
	const headerFormat = "# strata cluster metadata v%d crc32c=%08x"
	if _, err := fmt.Sscanf(string(header), headerFormat, &version, &sum); err != nil || fmt.Sprintf(headerFormat, version, sum) != string(header) {
		return nil, fmt.Errorf("%w: bad header %q", errCorrupt, header)
	}
	if version != formatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", errCorrupt, version, formatVersion)
	}
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: CRC-32C is %08x, header says %08x", errCorrupt, got, sum)
	}
	var s diskState
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return &s, nil
}

// readFile reads dir/name whole; fs.ErrNotExist when it is missing.
func readFile(fsys engine.FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// metaProperties is Kafka's meta.properties (version 0, ZooKeeper mode).
// removeIfExists removes path, ignoring a missing file.
func removeIfExists(fsys engine.FS, path string) (bool, error) {
	err := fsys.Remove(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// sortedTopics returns the topics' disk form, sorted by name.
func sortedTopics(topics map[string]*coordination.Topic) []diskTopic {
	out := make([]diskTopic, 0, len(topics))
	for _, t := range topics {
		dt := diskTopic{Name: t.Name, ID: t.ID.String(), Internal: t.Internal, Configs: t.Configs}
		for _, p := range t.Partitions {
			dt.Partitions = append(dt.Partitions, diskPartition{Replicas: p.Replicas, ISR: p.ISR, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch})
		}
		out = append(out, dt)
	}
	slices.SortFunc(out, func(a, b diskTopic) int { return strings.Compare(a.Name, b.Name) })
	return out
}
