package coordination

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func brokersOf(racks ...string) []Broker {
	out := make([]Broker, len(racks))
	for i, r := range racks {
		out[i] = Broker{ID: int32(i), Rack: r}
	}
	return out
}

// TestAssignKafka: with the random choices fixed, Assign places replicas
// as Kafka's AdminUtils does.
func TestAssignKafka(t *testing.T) {
	got, err := Assign(brokersOf("", "", "", "", ""), 10, 3, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int32{{0, 1, 2}, {1, 2, 3}, {2, 3, 4}, {3, 4, 0}, {4, 0, 1}, {0, 2, 3}, {1, 3, 4}, {2, 4, 0}, {3, 0, 1}, {4, 1, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Assign = %v, want %v", got, want)
	}
}

// TestAssignSpread: leaders and replicas spread evenly, every partition's
// replicas are distinct, and with racks each partition spans as many racks
// as it can.
func TestAssignSpread(t *testing.T) {
	for _, tc := range []struct {
		brokers []Broker
		rf      int
		racks   int  // racks each partition must span
		uneven  bool // racks of unequal size: rack spread before balance
	}{
		{brokersOf("", "", ""), 1, 0, false},
		{brokersOf("", "", ""), 3, 0, false},
		{brokersOf("a", "a", "b", "b", "c", "c"), 3, 3, false},
		{brokersOf("a", "b", "a", "b"), 2, 2, false},
		{brokersOf("a", "a", "a", "b"), 3, 2, true},
	} {
		t.Run(fmt.Sprint(tc.brokers, tc.rf), func(t *testing.T) {
			n := len(tc.brokers)
			got, err := Assign(tc.brokers, 6*n, tc.rf, 0, -1, -1)
			if err != nil {
				t.Fatal(err)
			}
			leaders := map[int32]int{}
			replicas := map[int32]int{}
			for p, rs := range got {
				if len(rs) != tc.rf {
					t.Fatalf("partition %d: %v", p, rs)
				}
				leaders[rs[0]]++
				racks := map[string]bool{}
				for i, r := range rs {
					replicas[r]++
					racks[tc.brokers[r].Rack] = true
					for _, o := range rs[:i] {
						if o == r {
							t.Fatalf("partition %d lists %d twice: %v", p, r, rs)
						}
					}
				}
				if tc.racks > 0 && len(racks) != tc.racks {
					t.Errorf("partition %d: replicas %v span %d racks, want %d", p, rs, len(racks), tc.racks)
				}
			}
			for _, b := range tc.brokers {
				if leaders[b.ID] != 6 || (!tc.uneven && replicas[b.ID] != 6*tc.rf) {
					t.Errorf("broker %d leads %d and holds %d; want 6 and %d", b.ID, leaders[b.ID], replicas[b.ID], 6*tc.rf)
				}
			}
		})
	}
	if _, err := Assign(brokersOf("", ""), 1, 3, 0, -1, -1); !errors.Is(err, ErrInvalidReplication) {
		t.Errorf("rf 3 on 2 brokers: %v", err)
	}
}

// TestAssignNewPartitions: partitions added to a topic continue the
// round-robin where its numbering is.
func TestAssignNewPartitions(t *testing.T) {
	all, _ := Assign(brokersOf("", "", ""), 6, 2, 0, 1, 1)
	tail, _ := Assign(brokersOf("", "", ""), 3, 2, 3, 1, 1)
	if !reflect.DeepEqual(all[3:], tail) {
		t.Errorf("partitions 3-5 placed %v alone, %v with the rest", tail, all[3:])
	}
	if _, err := PlanPartitions("t", 3, 3, 1, nil, brokersOf("")); !errors.Is(err, ErrInvalidPartitions) {
		t.Errorf("same count: %v", err)
	}
	if _, err := PlanPartitions("t", 3, 4, 1, [][]int32{{7}}, brokersOf("")); !errors.Is(err, ErrInvalidReplication) {
		t.Errorf("unknown broker: %v", err)
	}
}

func TestTopicIDText(t *testing.T) {
	id, err := NewTopicID()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTopicID(id.String())
	if err != nil || back != id || len(id.String()) != 22 {
		t.Errorf("%v -> %q -> %v, %v", id, id.String(), back, err)
	}
	if _, err := ParseTopicID("short"); err == nil {
		t.Error("ParseTopicID accepted a bad id")
	}
	m := MetaProperties{BrokerID: 3, ClusterID: id.String()}
	if got, err := DecodeMetaProperties(m.Encode()); err != nil || got != m {
		t.Errorf("meta.properties round trip: %+v, %v", got, err)
	}
}
