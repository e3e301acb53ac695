package local

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// File names in the directory.
const (
	metaPropertiesFile = "meta.properties"
	metadataFile       = "cluster-metadata.json"
	tmpSuffix          = ".tmp"
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

// writeAtomic replaces dir/name with data: write a temporary file, sync
// it, rename it over name, sync the directory.
func writeAtomic(fsys engine.FS, dir, name string, data []byte) (err error) {
	tmp := filepath.Join(dir, name+tmpSuffix)
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = fsys.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = fsys.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return fsys.SyncDir(dir)
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
type metaProperties struct {
	BrokerID  int32
	ClusterID string
}

func encodeMetaProperties(m metaProperties) []byte {
	return fmt.Appendf(nil, "#Written by Strata; do not edit.\nversion=0\nbroker.id=%d\ncluster.id=%s\n", m.BrokerID, m.ClusterID)
}

// decodeMetaProperties reads meta.properties as Kafka writes it: key=value
// lines and # comments. Version 1 (KRaft's node.id) is not ours to read.
func decodeMetaProperties(data []byte) (metaProperties, error) {
	kv := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return metaProperties{}, fmt.Errorf("line %q is not key=value", line)
		}
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if v := kv["version"]; v != "0" {
		return metaProperties{}, fmt.Errorf("version=%q: Strata reads version 0 (ZooKeeper-mode) meta.properties only", v)
	}
	id, err := strconv.ParseInt(kv["broker.id"], 10, 32)
	if err != nil || id < 0 {
		return metaProperties{}, fmt.Errorf("broker.id=%q: not a broker id", kv["broker.id"])
	}
	if kv["cluster.id"] == "" {
		return metaProperties{}, errors.New("no cluster.id")
	}
	return metaProperties{BrokerID: int32(id), ClusterID: kv["cluster.id"]}, nil
}

// metadataTopicID is the id Kafka reserves for its __cluster_metadata
// topic; never handed out, as Kafka's Uuid.randomUuid avoids it.
var metadataTopicID = coordination.TopicID{15: 1}

// newUUID returns a random version-4 UUID that is not zero, not Kafka's
// reserved metadata topic id, and whose base64 form does not start with
// '-' (it would read as a command-line flag), as Kafka's Uuid.randomUuid
// does.
func newUUID() (coordination.TopicID, error) {
	for {
		var id coordination.TopicID
		if _, err := rand.Read(id[:]); err != nil {
			return id, err
		}
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		if id != (coordination.TopicID{}) && id != metadataTopicID && encodeID(id)[0] != '-' {
			return id, nil
		}
	}
}

// encodeID is Kafka's text form of a UUID: base64url without padding.
func encodeID(id coordination.TopicID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func decodeID(s string) (coordination.TopicID, error) {
	var id coordination.TopicID
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("topic id %q is not a base64url UUID", s)
	}
	copy(id[:], b)
	return id, nil
}

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
		dt := diskTopic{Name: t.Name, ID: encodeID(t.ID), Internal: t.Internal, Configs: t.Configs}
		for _, p := range t.Partitions {
			dt.Partitions = append(dt.Partitions, diskPartition{Replicas: p.Replicas, ISR: p.ISR, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch})
		}
		out = append(out, dt)
	}
	slices.SortFunc(out, func(a, b diskTopic) int { return strings.Compare(a.Name, b.Name) })
	return out
}
