package coordination

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
)

// MaxPartitions is the most partitions a topic may have. Kafka sets no
// limit; this one keeps a mistyped count from creating millions of logs.
const MaxPartitions = 100_000

// Assign places the replicas of partitions new partitions, numbered from
// first, on brokers, as Kafka's AdminUtils does: partition by partition
// round-robin from a random start, followers shifted so that each broker's
// partitions spread their followers over the others, and, when every
// broker has a rack, a partition's replicas on as many racks as it has
// replicas. The first replica of each partition is its preferred leader.
// start and shift are the random choices; -1 draws them.
func Assign(brokers []Broker, partitions, rf int, first int32, start, shift int) ([][]int32, error) {
	n := len(brokers)
	switch {
	case rf < 1:
		return nil, fmt.Errorf("%w: %d: must be at least 1", ErrInvalidReplication, rf)
	case rf > n:
		return nil, fmt.Errorf("%w: replication factor %d larger than available brokers: %d", ErrInvalidReplication, rf, n)
	}
	if start < 0 {
		start = rand.IntN(n)
	}
	if shift < 0 {
		shift = rand.IntN(n)
	}
	arranged, racks := rackAlternated(brokers)
	out := make([][]int32, 0, partitions)
	for p := int(max(first, 0)); len(out) < partitions; p++ {
		if p > 0 && p%n == 0 {
			shift++
		}
		lead := (p + start) % n
		replicas := []int32{arranged[lead].ID}
		if racks == 0 {
			for j := range rf - 1 {
				replicas = append(replicas, arranged[replicaIndex(lead, shift, j, n)].ID)
			}
			out = append(out, replicas)
			continue
		}
		usedRacks := map[string]bool{arranged[lead].Rack: true}
		for k := 0; len(replicas) < rf; k++ {
			b := arranged[replicaIndex(lead, shift*racks, k, n)]
			if (usedRacks[b.Rack] && len(usedRacks) < racks) || (slices.Contains(replicas, b.ID) && len(replicas) < n) {
				continue
			}
			replicas = append(replicas, b.ID)
			usedRacks[b.Rack] = true
		}
		out = append(out, replicas)
	}
	return out, nil
}

func replicaIndex(first, shift, j, n int) int {
	if n == 1 {
		return first
	}
	return (first + 1 + (shift+j)%(n-1)) % n
}

// rackAlternated returns the brokers by id, or, when every broker has a
// rack, interleaved by rack (the first broker of each rack in rack order,
// then the second of each, ...), and the number of racks (0 for none).
func rackAlternated(brokers []Broker) ([]Broker, int) {
	sorted := slices.SortedFunc(slices.Values(brokers), func(a, b Broker) int { return cmp.Compare(a.ID, b.ID) })
	byRack := map[string][]Broker{}
	for _, b := range sorted {
		if b.Rack == "" {
			return sorted, 0
		}
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	racks := make([]string, 0, len(byRack))
	for r := range byRack {
		racks = append(racks, r)
	}
	slices.Sort(racks)
	out := make([]Broker, 0, len(sorted))
	for i := 0; len(out) < len(sorted); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out, len(racks)
}

// PlanTopic returns the replica assignment of a new topic: spec's explicit
// Assignment, checked against brokers, or one Assign makes with the
// defaults for -1 counts.
func PlanTopic(spec TopicSpec, defPartitions int32, defRF int16, brokers []Broker) ([][]int32, error) {
	if len(spec.Assignment) > 0 {
		n, rf := len(spec.Assignment), len(spec.Assignment[0])
		if spec.Partitions > 0 && int(spec.Partitions) != n {
			return nil, fmt.Errorf("%w: %d partitions asked for, but the assignment has %d", ErrInvalidPartitions, spec.Partitions, n)
		}
		if spec.ReplicationFactor > 0 && int(spec.ReplicationFactor) != rf {
			return nil, fmt.Errorf("%w: replication factor %d asked for, but the assignment has %d replicas", ErrInvalidReplication, spec.ReplicationFactor, rf)
		}
		if n > MaxPartitions {
			return nil, fmt.Errorf("%w: %d partitions: the most is %d", ErrInvalidPartitions, n, MaxPartitions)
		}
		if err := CheckAssignment(0, spec.Assignment, rf, brokers); err != nil {
			return nil, err
		}
		return spec.Assignment, nil
	}
	n, rf := spec.Partitions, spec.ReplicationFactor
	if n == -1 {
		n = defPartitions
	}
	if rf == -1 {
		rf = defRF
	}
	switch {
	case n < 1:
		return nil, fmt.Errorf("%w: %d: must be at least 1, or -1 for num.partitions", ErrInvalidPartitions, spec.Partitions)
	case n > MaxPartitions:
		return nil, fmt.Errorf("%w: %d partitions: the most is %d", ErrInvalidPartitions, n, MaxPartitions)
	case rf < 1:
		return nil, fmt.Errorf("%w: %d: must be at least 1, or -1 for default.replication.factor", ErrInvalidReplication, spec.ReplicationFactor)
	}
	return Assign(brokers, int(n), int(rf), 0, -1, -1)
}

// PlanPartitions returns the replica assignment of the partitions that
// raise a topic's count from cur to count: the explicit assignment,
// checked, or one Assign makes with the topic's replication factor rf.
func PlanPartitions(name string, cur, count int32, rf int, assignment [][]int32, brokers []Broker) ([][]int32, error) {
	switch {
	case count == cur:
		return nil, fmt.Errorf("%w: topic %s already has %d partitions", ErrInvalidPartitions, name, cur)
	case count < cur:
		return nil, fmt.Errorf("%w: topic %s has %d partitions, more than the requested %d; partitions can only be added", ErrInvalidPartitions, name, cur, count)
	case count > MaxPartitions:
		return nil, fmt.Errorf("%w: %d partitions: the most is %d", ErrInvalidPartitions, count, MaxPartitions)
	}
	if assignment == nil {
		return Assign(brokers, int(count-cur), rf, cur, -1, -1)
	}
	if len(assignment) != int(count-cur) {
		return nil, fmt.Errorf("%w: adding %d partitions but %d assignments given", ErrInvalidReplication, count-cur, len(assignment))
	}
	if err := CheckAssignment(cur, assignment, rf, brokers); err != nil {
		return nil, err
	}
	return assignment, nil
}

// CheckAssignment checks that every partition of an assignment (numbered
// from first) has rf distinct replicas on known brokers.
func CheckAssignment(first int32, assignment [][]int32, rf int, brokers []Broker) error {
	for i, replicas := range assignment {
		index := first + int32(i)
		if len(replicas) == 0 {
			return fmt.Errorf("%w: partition %d has no replicas", ErrInvalidReplication, index)
		}
		if len(replicas) != rf {
			return fmt.Errorf("%w: partition %d has %d replicas; every partition needs %d", ErrInvalidReplication, index, len(replicas), rf)
		}
		for j, id := range replicas {
			if !slices.ContainsFunc(brokers, func(b Broker) bool { return b.ID == id }) {
				return fmt.Errorf("%w: partition %d: unknown broker %d", ErrInvalidReplication, index, id)
			}
			if slices.Contains(replicas[:j], id) {
				return fmt.Errorf("%w: partition %d lists broker %d twice", ErrInvalidReplication, index, id)
			}
		}
	}
	return nil
}
