package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// grpOverrides make groups form at once (Kafka waits 3s for more members
// before a new group's first rebalance).
var grpOverrides = []string{"group.initial.rebalance.delay.ms=0"}

// grpOutput is what a group script printed (see testdata/group_*.py).
type grpOutput struct {
	assigned  [][]int32 // every assignment, in order
	records   []consumed
	committed map[int32]int64 // LIMIT mode: what it committed
	done      bool
}

// parseGroupScript parses a group script's output.
func parseGroupScript(t *testing.T, name string, lines []string) grpOutput {
	t.Helper()
	var o grpOutput
	for _, l := range lines {
		kind, rest, _ := strings.Cut(l, " ")
		switch kind {
		case "assigned":
			var ps []int32
			for f := range strings.SplitSeq(rest, ",") {
				if f == "" {
					continue
				}
				p, err := strconv.ParseInt(f, 10, 32)
				if err != nil {
					t.Fatalf("%s: bad line %q", name, l)
				}
				ps = append(ps, int32(p))
			}
			o.assigned = append(o.assigned, ps)
		case "record":
			f := strings.SplitN(rest, " ", 3)
			if len(f) != 3 {
				t.Fatalf("%s: bad line %q", name, l)
			}
			p, err1 := strconv.ParseInt(f[0], 10, 32)
			off, err2 := strconv.ParseInt(f[1], 10, 64)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: bad line %q", name, l)
			}
			o.records = append(o.records, consumed{int32(p), off, f[2]})
		case "committed":
			o.committed = map[int32]int64{}
			for f := range strings.SplitSeq(rest, ",") {
				if f == "" {
					continue
				}
				var p int32
				var off int64
				if _, err := fmt.Sscanf(f, "%d:%d", &p, &off); err != nil {
					t.Fatalf("%s: bad line %q", name, l)
				}
				o.committed[p] = off
			}
		case "done":
			o.done = true
		default:
			t.Fatalf("%s: unexpected line %q", name, l)
		}
	}
	return o
}

// grpScript is a group script running until its stdin is closed.
type grpScript struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu     sync.Mutex
	lines  []string
	stderr bytes.Buffer
	done   chan struct{}
	err    error // cmd.Wait's result once done is closed
}

// startGroupScript runs py script args... with its stdin open; it is killed
// when the test ends if it still runs.
func startGroupScript(t *testing.T, name, py, script string, args ...string) *grpScript {
	t.Helper()
	s := &grpScript{name: name, done: make(chan struct{})}
	s.cmd = exec.Command(py, append([]string{script}, args...)...)
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stderr = lockedWriter{&s.mu, &s.stderr}
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
		io.Copy(io.Discard, stdout)
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, tail(s.Stderr(), 30))
		}
	})
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (s *grpScript) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines)
}

func (s *grpScript) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// finish closes the script's stdin and waits for a clean exit.
func (s *grpScript) finish(t *testing.T) {
	t.Helper()
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of its stdin closing", s.name)
	}
	if s.err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", s.name, s.err, tail(s.Stderr(), 30))
	}
}

// grpProduce produces records from, ..., from+n-1 with franz-go: record
// i goes to partition i%partitions with the value "topic-i". Batches are
// not compressed: kafka-python as packaged has no snappy, franz-go's
// default codec.
func grpProduce(t *testing.T, addr, topic string, partitions, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Partition: int32((from + i) % partitions), Value: fmt.Appendf(nil, "%s-%d", topic, from+i)}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// grpAdmin returns a kadm client of the broker at addr.
func grpAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RetryTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// grpCommitted waits up to 20s for the group's committed offsets of topic
// to equal want (a restarted broker may still be loading them) and
// returns the last ones seen.
func grpCommitted(t *testing.T, adm *kadm.Client, group, topic string, want map[int32]int64) map[int32]int64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := adm.FetchOffsets(ctx, group)
		cancel()
		got := map[int32]int64{}
		if err == nil {
			for p, o := range resp[topic] {
				if o.Err == nil {
					got[p] = o.At
				}
			}
		}
		if maps.Equal(got, want) || time.Now().After(deadline) {
			if err != nil {
				t.Errorf("FetchOffsets %s: %v", group, err)
			}
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGroupSharedKafkaPythonConfluent: a kafka-python and a confluent-kafka
// consumer share one group on a 6-partition topic. Once the group is
// stable (each has printed the assignment DescribeGroups gives it, and
// together they hold every partition once), records are produced; they
// read every record between them, none twice, each only from its own
// partitions, with no further rebalance; their commits cover everything;
// when both close, the group is Empty.
func TestGroupSharedKafkaPythonConfluent(t *testing.T) {
	t.Parallel()
	kpy := python(t, "kafka", "python3-kafka")
	cpy := python(t, "confluent_kafka", "python3-confluent-kafka")
	const (
		topic = "shared"
		group = "shared-group"
		parts = 6
		total = 120
	)
	b := startBroker(t, t.TempDir(), []string{fmt.Sprintf("KAFKA_CREATE_TOPICS=%s:%d:1", topic, parts)}, grpOverrides...)
	scripts := []*grpScript{
		startGroupScript(t, "kafka-python", kpy, "testdata/group_kafka_python.py", b.Addr, topic, group, "kafka-python", "0"),
		startGroupScript(t, "confluent", cpy, "testdata/group_confluent.py", b.Addr, topic, group, "confluent", "0"),
	}
	adm := grpAdmin(t, b.Addr)

	// Stable: DescribeGroups shows both members, their assignments split
	// the partitions, and each script printed the one it was given.
	stable := map[string][]int32{}
	deadline := time.Now().Add(40 * time.Second)
	for why := "not yet described"; why != ""; {
		if time.Now().After(deadline) {
			t.Fatalf("group not stable with both consumers within 40s: %s", why)
		}
		time.Sleep(50 * time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		d, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err != nil {
			why = err.Error()
			continue
		}
		g := d[group]
		if g.State != "Stable" || len(g.Members) != 2 {
			why = fmt.Sprintf("state %q with %d members", g.State, len(g.Members))
			continue
		}
		why = ""
		clear(stable)
		seen := map[int32]bool{}
		for _, m := range g.Members {
			a, ok := m.Assigned.AsConsumer()
			if !ok {
				why = fmt.Sprintf("member %s has no consumer assignment", m.ClientID)
				break
			}
			var ps []int32
			for _, at := range a.Topics {
				if at.Topic == topic {
					ps = append(ps, at.Partitions...)
				}
			}
			slices.Sort(ps)
			for _, p := range ps {
				if seen[p] {
					why = fmt.Sprintf("partition %d assigned twice", p)
				}
				seen[p] = true
			}
			stable[m.ClientID] = ps
		}
		if why == "" && len(seen) != parts {
			why = fmt.Sprintf("%d of %d partitions assigned", len(seen), parts)
		}
		for _, s := range scripts {
			if why != "" {
				break
			}
			want, ok := stable[s.name]
			if !ok {
				why = fmt.Sprintf("no member with client id %s: %v", s.name, slices.Collect(maps.Keys(stable)))
				break
			}
			out := parseGroupScript(t, s.name, s.Lines())
			if n := len(out.assigned); n == 0 || !slices.Equal(out.assigned[n-1], want) {
				why = fmt.Sprintf("%s was assigned %v, has printed %v", s.name, want, out.assigned)
			}
		}
	}
	if len(stable["kafka-python"]) == 0 || len(stable["confluent"]) == 0 {
		t.Fatalf("stable assignment %v leaves one consumer idle", stable)
	}

	grpProduce(t, b.Addr, topic, parts, 0, total)
	deadline = time.Now().Add(30 * time.Second)
	for {
		n := 0
		for _, s := range scripts {
			n += len(parseGroupScript(t, s.name, s.Lines()).records)
		}
		if n >= total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumers read %d of %d records within 30s", n, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The assignments while they read, taken before any of them stops:
	// the first to leave makes the group rebalance, which a consumer
	// still running may print before it stops too.
	assigned := map[string][][]int32{}
	for _, s := range scripts {
		assigned[s.name] = parseGroupScript(t, s.name, s.Lines()).assigned
	}
	for _, s := range scripts {
		s.finish(t)
	}

	reads := map[string][]consumed{}
	for _, s := range scripts {
		out := parseGroupScript(t, s.name, s.Lines())
		if !out.done {
			t.Errorf("%s did not finish", s.name)
		}
		if a := assigned[s.name]; len(a) == 0 || !slices.Equal(a[len(a)-1], stable[s.name]) {
			t.Errorf("%s: assignments %v after the group was stable with %v", s.name, a, stable[s.name])
		}
		reads[s.name] = out.records
	}
	checkGroupReads(t, topic, parts, total, stable, reads)
	want := map[int32]int64{}
	for p := range int32(parts) {
		want[p] = total / parts
	}
	if got := grpCommitted(t, adm, group, topic, want); !maps.Equal(got, want) {
		t.Errorf("committed %v, want %v", got, want)
	}
	// Both left the group as they closed: it is Empty well before their
	// 6s sessions could have expired.
	deadline = time.Now().Add(4 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		d, err := adm.DescribeGroups(ctx, group)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		g := d[group]
		if g.State == "Empty" && len(g.Members) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("4s after both consumers closed: state %q with %d members, want Empty", g.State, len(g.Members))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Stop()
}

// TestGroupResumeAfterKill: a kafka-python consumer and a confluent-kafka
// consumer, each in a group of its own, read part of a 3-partition topic
// and commit; the broker is SIGKILLed and restarted on the same dirs; the
// commits are still there, and the other client, joining each group,
// reads exactly the records after them: nothing skipped, nothing read
// again.
func TestGroupResumeAfterKill(t *testing.T) {
	t.Parallel()
	kpy := python(t, "kafka", "python3-kafka")
	cpy := python(t, "confluent_kafka", "python3-confluent-kafka")
	const (
		topic = "resume"
		parts = 3
		total = 60
		first = 25 // records read before the kill
	)
	dir := t.TempDir()
	b := startBroker(t, dir, []string{fmt.Sprintf("KAFKA_CREATE_TOPICS=%s:%d:1", topic, parts)}, grpOverrides...)
	grpProduce(t, b.Addr, topic, parts, 0, total)

	type client struct{ name, py, script string }
	kp := client{"kafka-python", kpy, "testdata/group_kafka_python.py"}
	ck := client{"confluent", cpy, "testdata/group_confluent.py"}
	// run runs each client in its group at once, reading n records.
	run := func(addr string, n int, runs map[string]client) map[string]grpOutput {
		t.Helper()
		type result struct {
			group  string
			stdout []byte
			stderr []byte
			err    error
		}
		results := make(chan result, len(runs))
		for group, c := range runs {
			go func() {
				out, errb, err := runToolErr(60*time.Second, nil, c.py, c.script, addr, topic, group, c.name, strconv.Itoa(n))
				results <- result{group, out, errb, err}
			}()
		}
		outs := map[string]grpOutput{}
		for range runs {
			r := <-results
			c := runs[r.group]
			if r.err != nil {
				t.Fatalf("%s in %s: %v\nstdout:\n%s\nstderr:\n%s", c.name, r.group, r.err, tail(string(r.stdout), 20), tail(string(r.stderr), 20))
			}
			var lines []string
			for l := range strings.Lines(string(r.stdout)) {
				lines = append(lines, strings.TrimSuffix(l, "\n"))
			}
			o := parseGroupScript(t, c.name, lines)
			if !o.done || len(o.records) != n {
				t.Fatalf("%s in %s: read %d records (done %v), want %d", c.name, r.group, len(o.records), o.done, n)
			}
			outs[r.group] = o
		}
		return outs
	}

	before := run(b.Addr, first, map[string]client{"kp-first": kp, "ck-first": ck})
	adm := grpAdmin(t, b.Addr)
	committed := map[string]map[int32]int64{}
	for group, o := range before {
		next := map[int32]int64{}
		for _, r := range o.records {
			next[r.partition] = max(next[r.partition], r.offset+1)
		}
		if !maps.Equal(o.committed, next) {
			t.Fatalf("%s: committed %v after reading up to %v", group, o.committed, next)
		}
		if got := grpCommitted(t, adm, group, topic, next); !maps.Equal(got, next) {
			t.Fatalf("%s: FetchOffsets %v, the consumer committed %v", group, got, next)
		}
		committed[group] = next
	}

	b.Kill()
	b = startBroker(t, dir, nil, grpOverrides...)
	adm = grpAdmin(t, b.Addr)
	for group, want := range committed {
		if got := grpCommitted(t, adm, group, topic, want); !maps.Equal(got, want) {
			t.Fatalf("%s: committed %v after SIGKILL and restart, %v before", group, got, want)
		}
	}

	after := run(b.Addr, total-first, map[string]client{"kp-first": ck, "ck-first": kp})
	for group, o := range after {
		seen := map[string]bool{}
		for _, r := range before[group].records {
			seen[r.value] = true
		}
		low := map[int32]int64{}
		for _, r := range o.records {
			if seen[r.value] {
				t.Errorf("%s: %q (%d/%d) read again after the restart, though committed", group, r.value, r.partition, r.offset)
			}
			seen[r.value] = true
			if l, ok := low[r.partition]; !ok || r.offset < l {
				low[r.partition] = r.offset
			}
		}
		for i := range total {
			if v := fmt.Sprintf("%s-%d", topic, i); !seen[v] {
				t.Errorf("%s: %q never read", group, v)
			}
		}
		for p, l := range low {
			if c := committed[group][p]; l != c {
				t.Errorf("%s: partition %d resumed at %d, committed %d", group, p, l, c)
			}
		}
		want := map[int32]int64{}
		for p := range int32(parts) {
			want[p] = total / parts
		}
		if got := grpCommitted(t, adm, group, topic, want); !maps.Equal(got, want) {
			t.Errorf("%s: committed %v at the end, want %v", group, got, want)
		}
	}
	b.Stop()
}

// checkGroupReads checks what the members of a group read of the total
// records grpProduce wrote to topic's parts partitions: every record once,
// by the member stably assigned its partition, at the offset grpProduce
// gave it.
func checkGroupReads(t *testing.T, topic string, parts, total int, stable map[string][]int32, reads map[string][]consumed) {
	t.Helper()
	readBy := map[string][]string{} // value → members that read it
	for member, rs := range reads {
		for _, r := range rs {
			readBy[r.value] = append(readBy[r.value], member)
			if !slices.Contains(stable[member], r.partition) {
				t.Errorf("%s read %q from partition %d, assigned %v", member, r.value, r.partition, stable[member])
			}
			i, err := strconv.Atoi(strings.TrimPrefix(r.value, topic+"-"))
			if err != nil || i%parts != int(r.partition) || int64(i/parts) != r.offset {
				t.Errorf("%s read %q at %d/%d", member, r.value, r.partition, r.offset)
			}
		}
	}
	for i := range total {
		v := fmt.Sprintf("%s-%d", topic, i)
		if by := readBy[v]; len(by) != 1 {
			t.Errorf("%s read by %v, want exactly one member", v, by)
		}
	}
}
