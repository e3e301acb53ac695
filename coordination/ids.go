package coordination

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// metadataTopicID is the id Kafka reserves for its __cluster_metadata
// topic; never handed out, as Kafka's Uuid.randomUuid avoids it.
var metadataTopicID = TopicID{15: 1}

// NewTopicID returns a random version-4 UUID that is not zero, not Kafka's
// reserved metadata topic id, and whose text form does not start with '-'
// (it would read as a command-line flag), as Kafka's Uuid.randomUuid does.
// Cluster ids are made the same way.
func NewTopicID() (TopicID, error) {
	for {
		var id TopicID
		if _, err := rand.Read(id[:]); err != nil {
			return id, err
		}
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
		if id != (TopicID{}) && id != metadataTopicID && id.String()[0] != '-' {
			return id, nil
		}
	}
}

// String is Kafka's text form of a UUID: base64url without padding, 22
// characters.
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// ParseTopicID reads the text form of a UUID.
func ParseTopicID(s string) (TopicID, error) {
	var id TopicID
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("topic id %q is not a base64url UUID", s)
	}
	copy(id[:], b)
	return id, nil
}

// MetaPropertiesFile is the file in each log dir that names the cluster and
// the broker the directory belongs to, in Kafka's format.
const MetaPropertiesFile = "meta.properties"

// MetaProperties is what meta.properties holds.
type MetaProperties struct {
	BrokerID  int32
	ClusterID string
}

// Encode returns meta.properties' content, as Kafka's ZooKeeper mode
// writes it (version 0).
func (m MetaProperties) Encode() []byte {
	return fmt.Appendf(nil, "#Written by Strata; do not edit.\nversion=0\nbroker.id=%d\ncluster.id=%s\n", m.BrokerID, m.ClusterID)
}

// DecodeMetaProperties reads meta.properties as Kafka writes it: key=value
// lines and # comments. Version 1 (KRaft's node.id) is not ours to read.
func DecodeMetaProperties(data []byte) (MetaProperties, error) {
	kv := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return MetaProperties{}, fmt.Errorf("line %q is not key=value", line)
		}
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	if v := kv["version"]; v != "0" {
		return MetaProperties{}, fmt.Errorf("version=%q: Strata reads version 0 (ZooKeeper-mode) meta.properties only", v)
	}
	id, err := strconv.ParseInt(kv["broker.id"], 10, 32)
	if err != nil || id < 0 {
		return MetaProperties{}, fmt.Errorf("broker.id=%q: not a broker id", kv["broker.id"])
	}
	if kv["cluster.id"] == "" {
		return MetaProperties{}, errors.New("no cluster.id")
	}
	return MetaProperties{BrokerID: int32(id), ClusterID: kv["cluster.id"]}, nil
}
