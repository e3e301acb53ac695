package zk

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/strata-broker/strata/coordination"
)

// The znodes, below the chroot, as Kafka's ZooKeeper mode lays them out.
const (
	pathBrokers         = "/brokers"
	pathBrokerIDs       = "/brokers/ids"
	pathBrokerSeqID     = "/brokers/seqid"
	pathTopics          = "/brokers/topics"
	pathController      = "/controller"
	pathControllerEpoch = "/controller_epoch"
	pathClusterID       = "/cluster/id"
	pathCluster         = "/cluster"
	pathConfig          = "/config"
	pathConfigTopics    = "/config/topics"
	pathAdmin           = "/admin"
	pathDeleteTopics    = "/admin/delete_topics"
	pathISRChange       = "/isr_change_notification"
	pathProducerIDs     = "/latest_producer_id_block"
)

// persistentPaths are created at start-up if missing.
var persistentPaths = []string{pathBrokers, pathBrokerIDs, pathTopics, pathCluster, pathConfig, pathConfigTopics, pathAdmin, pathDeleteTopics, pathISRChange}

func brokerPath(id int32) string        { return pathBrokerIDs + "/" + strconv.Itoa(int(id)) }
func topicPath(name string) string      { return pathTopics + "/" + name }
func partitionsPath(name string) string { return topicPath(name) + "/partitions" }
func partitionPath(name string, p int32) string {
	return partitionsPath(name) + "/" + strconv.Itoa(int(p))
}
func statePath(name string, p int32) string { return partitionPath(name, p) + "/state" }
func configPath(name string) string         { return pathConfigTopics + "/" + name }
func deletePath(name string) string         { return pathDeleteTopics + "/" + name }

// internalTopics are the topics Kafka treats as internal by name.
var internalTopics = []string{"__consumer_offsets", "__transaction_state"}

// brokerZNode is /brokers/ids/<id>, version 5.
type brokerZNode struct {
	Version     int               `json:"version"`
	Host        string            `json:"host"`
	Port        int32             `json:"port"`
	JMXPort     int               `json:"jmx_port"`
	Timestamp   string            `json:"timestamp"`
	Endpoints   []string          `json:"endpoints"`
	ProtocolMap map[string]string `json:"listener_security_protocol_map"`
	Rack        *string           `json:"rack,omitempty"`
	Features    map[string]any    `json:"features"`
}

func encodeBroker(b coordination.Broker, listener string, now time.Time) []byte {
	n := brokerZNode{
		Version: 5, Host: b.Host, Port: b.Port, JMXPort: -1,
		Timestamp:   strconv.FormatInt(now.UnixMilli(), 10),
		Endpoints:   []string{fmt.Sprintf("%s://%s", listener, joinHostPort(b.Host, b.Port))},
		ProtocolMap: map[string]string{listener: "PLAINTEXT"},
		Features:    map[string]any{},
	}
	if b.Rack != "" {
		n.Rack = &b.Rack
	}
	return marshal(n)
}

func joinHostPort(host string, port int32) string {
	if slices.Contains([]byte(host), ':') {
		return fmt.Sprintf("[%s]:%d", host, port)
	}
	return fmt.Sprintf("%s:%d", host, port)
}

func decodeBroker(id int32, data []byte) (coordination.Broker, error) {
	var n brokerZNode
	if err := json.Unmarshal(data, &n); err != nil {
		return coordination.Broker{}, fmt.Errorf("broker %d: %w", id, err)
	}
	b := coordination.Broker{ID: id, Host: n.Host, Port: n.Port}
	if n.Rack != nil {
		b.Rack = *n.Rack
	}
	return b, nil
}

// controllerZNode is /controller.
type controllerZNode struct {
	Version   int    `json:"version"`
	BrokerID  int32  `json:"brokerid"`
	Timestamp string `json:"timestamp"`
}

func encodeController(id int32, now time.Time) []byte {
	return marshal(controllerZNode{Version: 1, BrokerID: id, Timestamp: strconv.FormatInt(now.UnixMilli(), 10)})
}

func decodeController(data []byte) (int32, error) {
	var n controllerZNode
	if err := json.Unmarshal(data, &n); err != nil {
		return -1, fmt.Errorf("/controller: %w", err)
	}
	return n.BrokerID, nil
}

// clusterIDZNode is /cluster/id.
type clusterIDZNode struct {
	Version string `json:"version"`
	ID      string `json:"id"`
}

// topicZNode is /brokers/topics/<topic>, version 3.
type topicZNode struct {
	Version          int                `json:"version"`
	TopicID          string             `json:"topic_id,omitempty"`
	Partitions       map[string][]int32 `json:"partitions"`
	AddingReplicas   map[string][]int32 `json:"adding_replicas"`
	RemovingReplicas map[string][]int32 `json:"removing_replicas"`
}

// topicAssignment is what /brokers/topics/<topic> says: the topic's id,
// and by partition its replicas and, while a reassignment moves it, the
// replicas being added and removed (nil otherwise).
type topicAssignment struct {
	id       coordination.TopicID
	replicas [][]int32
	adding   [][]int32
	removing [][]int32
}

func encodeTopic(id coordination.TopicID, assignment [][]int32) []byte {
	return encodeAssignment(topicAssignment{id: id, replicas: assignment})
}

func encodeAssignment(a topicAssignment) []byte {
	n := topicZNode{Version: 3, TopicID: a.id.String(), Partitions: map[string][]int32{},
		AddingReplicas: map[string][]int32{}, RemovingReplicas: map[string][]int32{}}
	for p, replicas := range a.replicas {
		k := strconv.Itoa(p)
		n.Partitions[k] = replicas
		if p < len(a.adding) && len(a.adding[p]) > 0 {
			n.AddingReplicas[k] = a.adding[p]
		}
		if p < len(a.removing) && len(a.removing[p]) > 0 {
			n.RemovingReplicas[k] = a.removing[p]
		}
	}
	return marshal(n)
}

// decodeTopic returns a topic's id and replica assignment, partition by
// partition, with the reassignment in progress (adding and removing
// replicas), if any.
func decodeTopic(name string, data []byte) (topicAssignment, error) {
	var a topicAssignment
	var n topicZNode
	if err := json.Unmarshal(data, &n); err != nil {
		return a, fmt.Errorf("topic %s: %w", name, err)
	}
	if n.TopicID != "" {
		var err error
		if a.id, err = coordination.ParseTopicID(n.TopicID); err != nil {
			return a, fmt.Errorf("topic %s: %w", name, err)
		}
	}
	a.replicas = make([][]int32, len(n.Partitions))
	for k, replicas := range n.Partitions {
		p, err := strconv.Atoi(k)
		if err != nil || p < 0 || p >= len(a.replicas) || a.replicas[p] != nil || len(replicas) == 0 {
			return a, fmt.Errorf("topic %s: partitions are not numbered 0..%d with replicas", name, len(n.Partitions)-1)
		}
		a.replicas[p] = replicas
	}
	// Kafka's tools write the moving replicas under the same keys; a
	// key naming no partition is ignored rather than failing the topic.
	moving := func(m map[string][]int32) [][]int32 {
		var out [][]int32
		for k, rs := range m {
			p, err := strconv.Atoi(k)
			if err != nil || p < 0 || p >= len(a.replicas) || len(rs) == 0 {
				continue
			}
			if out == nil {
				out = make([][]int32, len(a.replicas))
			}
			out[p] = rs
		}
		return out
	}
	a.adding, a.removing = moving(n.AddingReplicas), moving(n.RemovingReplicas)
	return a, nil
}

// reassigning reports whether partition p is being reassigned.
func (a *topicAssignment) reassigning(p int) bool {
	return p < len(a.adding) && len(a.adding[p]) > 0 || p < len(a.removing) && len(a.removing[p]) > 0
}

// addingOf and removingOf return partition p's moving replicas, or nil.
func (a *topicAssignment) addingOf(p int) []int32 {
	if p < len(a.adding) {
		return a.adding[p]
	}
	return nil
}

func (a *topicAssignment) removingOf(p int) []int32 {
	if p < len(a.removing) {
		return a.removing[p]
	}
	return nil
}

// stateZNode is /brokers/topics/<topic>/partitions/<p>/state.
type stateZNode struct {
	ControllerEpoch int32   `json:"controller_epoch"`
	Leader          int32   `json:"leader"`
	Version         int     `json:"version"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	ISR             []int32 `json:"isr"`
}

func encodeState(s stateZNode) []byte {
	s.Version = 1
	if s.ISR == nil {
		s.ISR = []int32{}
	}
	return marshal(s)
}

// configZNode is /config/topics/<topic>.
type configZNode struct {
	Version int               `json:"version"`
	Config  map[string]string `json:"config"`
}

func encodeConfig(m map[string]string) []byte {
	if m == nil {
		m = map[string]string{}
	}
	return marshal(configZNode{Version: 1, Config: m})
}

// producerIDZNode is /latest_producer_id_block.
type producerIDZNode struct {
	Version    int    `json:"version"`
	Broker     int32  `json:"broker"`
	BlockStart string `json:"block_start"`
	BlockEnd   string `json:"block_end"`
}

// marshal encodes a znode's JSON; the znode types always encode.
func marshal(v any) []byte {
	data, _ := json.Marshal(v)
	return data
}
