package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/coordination/zk/zktest"
)

// BrokerTarget is one Kafka-compatible broker under benchmark, run as a
// process of its own and reached over loopback by a franz-go client in the
// benchmark's process, so every target pays the same client and socket
// costs and no target's heap changes how often the client's collector runs.
type BrokerTarget struct {
	Name string
	// Start starts the broker and returns the address clients seed from
	// and a function that stops it.
	Start func(tb testing.TB) (addr string, stop func())
	// ReplicationFactor is that of the benchmark's topics; 0 means 1.
	ReplicationFactor int16
	// ProduceOnly runs only the produce workloads.
	ProduceOnly bool
}

// BaselineEnv names the environment variable that, set to the path of a
// prebuilt strata program (an older commit's, say), adds strata-base and
// strata-base-rf3: that program run as strata and strata-rf3 are, so two
// builds compare in one run on one machine. Each runs right after (or,
// with BaselineFirstEnv set, right before) its counterpart, so the two of
// a pair meet the machine in the same state; alternating the order over
// runs cancels what running second costs or gains.
const (
	BaselineEnv      = "STRATA_BENCH_BASELINE"
	BaselineFirstEnv = "STRATA_BENCH_BASELINE_FIRST"
)

// BrokerTargets returns franz-go's kfake (the baseline: an in-memory fake
// cluster of one broker, bench/kfakeserver), Strata (strata serve: one
// broker, mmap engine, logs in a temporary directory), and strata-rf3:
// three strata brokers and a ZooKeeper (Debian's, as the cluster tests
// run it), whose topics have three replicas, so every acks=all produce
// waits for two followers to copy it. The programs are built once into
// bin. With BaselineEnv set, strata-base and strata-base-rf3 are
// interleaved with them.
func BrokerTargets(bin string) []BrokerTarget {
	ts := []BrokerTarget{{Name: "kfake", Start: func(tb testing.TB) (string, func()) {
		return startProcess(tb, "kfake", filepath.Join(bin, "kfakeserver"))
	}}}
	cur := strataTargets("strata", filepath.Join(bin, "strata"))
	base := os.Getenv(BaselineEnv)
	if base == "" {
		return append(ts, cur...)
	}
	old := strataTargets("strata-base", base)
	for i := range cur {
		if os.Getenv(BaselineFirstEnv) != "" {
			ts = append(ts, old[i], cur[i])
		} else {
			ts = append(ts, cur[i], old[i])
		}
	}
	return ts
}

// strataTargets returns name, one broker running the strata program prog,
// and name-rf3, three of them with topics of three replicas.
func strataTargets(name, prog string) []BrokerTarget {
	return []BrokerTarget{
		{Name: name, Start: func(tb testing.TB) (string, func()) {
			return startProcess(tb, name, prog, "serve",
				"--override", "listeners=PLAINTEXT://127.0.0.1:0",
				"--override", "log.dirs="+tb.TempDir(),
				"--override", "log.engine=mmap")
		}},
		{Name: name + "-rf3", ReplicationFactor: 3, ProduceOnly: true, Start: func(tb testing.TB) (string, func()) {
			return startCluster(tb, prog, 3)
		}},
	}
}

// startCluster starts ZooKeeper and n strata brokers (mmap engine) and
// waits until every broker is a member; it returns the first broker's
// address. The brokers stop one after another, each with a controlled
// shutdown.
func startCluster(tb testing.TB, prog string, n int) (string, func()) {
	zks := zktest.Start(tb)
	var addrs []string
	var stops []func()
	for id := 1; id <= n; id++ {
		addr, stop := startProcess(tb, fmt.Sprintf("strata-%d", id), prog, "serve",
			"--override", "listeners=PLAINTEXT://127.0.0.1:0",
			"--override", "log.dirs="+tb.TempDir(),
			"--override", "log.engine=mmap",
			"--override", "zookeeper.connect="+zks.Connect(),
			"--override", fmt.Sprintf("broker.id=%d", id))
		addrs = append(addrs, addr)
		stops = append(stops, stop)
	}
	stopAll := func() {
		for _, stop := range stops {
			stop()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if members, err := brokerCount(ctx, addrs[0]); err == nil && members == n {
			return addrs[0], stopAll
		}
		select {
		case <-ctx.Done():
			stopAll()
			tb.Fatalf("the %d brokers did not all join the cluster within 30s", n)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// brokerCount asks the broker at addr how many brokers its cluster has.
func brokerCount(ctx context.Context, addr string) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	return len(resp.Brokers), nil
}

// buildTargets builds the target programs into dir.
func buildTargets(tb testing.TB, dir string) {
	for name, pkg := range map[string]string{
		"strata":      "github.com/strata-broker/strata/cmd/strata",
		"kfakeserver": "github.com/strata-broker/strata/bench/kfakeserver",
	} {
		out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
		if err != nil {
			tb.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
}

// addrLine finds the listening address a target prints: "addr=host:port",
// alone (kfakeserver) or in strata's "serving" log line.
var addrLine = regexp.MustCompile(`(?:^|\s)addr=([0-9.]+:[0-9]+)`)

// startProcess runs a target program and waits (bounded) for it to print
// its address; stop sends SIGTERM and waits for the exit.
func startProcess(tb testing.TB, name, prog string, args ...string) (string, func()) {
	cmd := exec.Command(prog, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout // strata logs to stderr, kfakeserver prints to stdout
	if err := cmd.Start(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	recordStarted(cmd.Process.Pid)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := addrLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("%s exited: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			tb.Errorf("%s did not stop within 30s of SIGTERM", name)
		}
	}
	select {
	case addr := <-found:
		return addr, stop
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		tb.Fatalf("%s printed no address within 30s", name)
		return "", nil
	}
}

// Whole-broker workload sizes.
const (
	brokerPartitions = 6
	smallRecord      = 100
	largeRecord      = 16 << 10
	// produceBuffer bounds what a producer has buffered or in flight
	// (kgo.MaxBufferedRecords is this over the record size): the Java
	// producer's buffer.memory default, enough to keep five produce
	// requests of 1 MB batches in flight, as an idempotent producer may.
	// (8 MiB measured the same on both targets.)
	produceBuffer = 32 << 20
	// consumeFixture is the size of the log a consume pass reads; a
	// benchmark that needs more records reads it again with a new
	// consumer, so the fixture does not grow with b.N.
	consumeFixture = 64 << 20
	// brokerTimeout bounds one benchmark invocation: setup, the timed
	// loop and the checks after it.
	brokerTimeout = 3 * time.Minute
)

// initProducerIDKey is InitProducerId's API key. A producer is idempotent
// only if the broker serves it (kgo otherwise quietly produces without a
// producer id).
const initProducerIDKey = 22

// RunBrokers runs every whole-broker workload over every target, one
// target at a time, as b.Run(<target>/<workload>):
//
//	produce-100B, produce-16KiB  b.N records of that value size to 6
//	                             partitions, acks=all, idempotent when
//	                             every target serves InitProducerId
//	consume-100B, consume-16KiB  b.N records read from offset 0 of a
//	                             pre-produced 6-partition fixture
//	<workload>-wire              the same with the wire driver (wire.go)
//	                             in place of kgo's producer and consumer
//	<workload>-wire-x4           the same with four wire producers or
//	                             consumers at once, each on its own
//	                             connection with its share of b.N
//
// Producers are idempotent only if every target advertises InitProducerId
// in ApiVersions; otherwise every target is driven without idempotence
// (and with kgo's idempotent limit of five produce requests in flight), so
// the targets are compared doing the same work.
//
// Each target is a process of its own (the client's collector then paces
// itself on the client's heap alone: with kfake in the same process, the
// records kfake keeps in its heap made the client collect less often than
// beside Strata, whose data is in mapped files), and runs alone: started in
// its own b.Run, stopped at the end of it, so the two share the machine's
// two cores only with the client.
func RunBrokers(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	bin := b.TempDir()
	buildTargets(b, bin)
	targets := BrokerTargets(bin)
	idempotent := true
	for _, t := range targets {
		addr, stop := t.Start(b)
		ok, err := serves(ctx, addr, initProducerIDKey)
		stop()
		takeStarted()
		if err != nil {
			b.Fatalf("%s: ApiVersions: %v", t.Name, err)
		}
		if !ok {
			b.Logf("%s does not serve InitProducerId: every target produces without idempotence", t.Name)
			idempotent = false
		}
	}
	for _, t := range targets {
		b.Run(t.Name, func(b *testing.B) {
			runtime.GC()
			takeStarted()
			addr, stop := t.Start(b)
			defer stop()
			r := &brokerRun{name: t.Name, addr: addr, idempotent: idempotent, replicas: max(t.ReplicationFactor, 1), fixtures: map[int]*fixture{}, pids: takeStarted()}
			b.Run("produce-100B", func(b *testing.B) { r.benchProduce(b, smallRecord) })
			b.Run("produce-16KiB", func(b *testing.B) { r.benchProduce(b, largeRecord) })
			b.Run("produce-latency-100B", func(b *testing.B) { r.benchProduceLatency(b, smallRecord) })
			if t.ProduceOnly {
				return
			}
			b.Run("consume-100B", func(b *testing.B) { r.benchConsume(b, smallRecord) })
			b.Run("consume-16KiB", func(b *testing.B) { r.benchConsume(b, largeRecord) })
			for _, conns := range []int{1, wireClients} {
				suffix := "-wire"
				if conns > 1 {
					suffix = fmt.Sprintf("-wire-x%d", conns)
				}
				b.Run("produce-100B"+suffix, func(b *testing.B) { r.benchProduceWire(b, smallRecord, conns) })
				b.Run("produce-16KiB"+suffix, func(b *testing.B) { r.benchProduceWire(b, largeRecord, conns) })
				b.Run("consume-100B"+suffix, func(b *testing.B) { r.benchConsumeWire(b, smallRecord, conns) })
				b.Run("consume-16KiB"+suffix, func(b *testing.B) { r.benchConsumeWire(b, largeRecord, conns) })
			}
		})
	}
}

// serves reports whether the broker at addr advertises API key in
// ApiVersions.
func serves(ctx context.Context, addr string, key int16) (bool, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return false, err
	}
	defer cl.Close()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return false, err
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == key {
			return true, nil
		}
	}
	return false, nil
}

// brokerRun is one started target and the state its benchmarks share.
type brokerRun struct {
	name       string
	addr       string
	idempotent bool
	replicas   int16            // replication factor of its topics
	topics     int              // topics created so far, for unique names
	fixtures   map[int]*fixture // consume fixtures by record size
	pids       []int            // the target's processes (cpu.go)
}

// cpu is the CPU time the target's processes have used so far.
func (r *brokerRun) cpu() time.Duration { return cpuTime(r.pids) }

// reportCPU reports the target's CPU time per op since since (a cpu
// reading taken as the timed section began) as broker-cpu-ns/op.
func (r *brokerRun) reportCPU(b *testing.B, since time.Duration) {
	if used := r.cpu() - since; since > 0 && b.N > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "broker-cpu-ns/op")
	}
}

// fixture is a topic holding records records of size bytes, every
// partition from offset 0.
type fixture struct {
	topic   string
	records int
}

func (r *brokerRun) newTopic(ctx context.Context, tb testing.TB, prefix string) string {
	r.topics++
	name := fmt.Sprintf("%s-%d", prefix, r.topics)
	adm := r.admin(tb)
	defer adm.Close()
	resp, err := adm.CreateTopic(ctx, brokerPartitions, r.replicas, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		tb.Fatalf("%s: create topic %s: %v", r.name, name, err)
	}
	return name
}

func (r *brokerRun) deleteTopic(ctx context.Context, tb testing.TB, topic string) {
	adm := r.admin(tb)
	defer adm.Close()
	resp, err := adm.DeleteTopic(ctx, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		tb.Errorf("%s: delete topic %s: %v", r.name, topic, err)
	}
}

func (r *brokerRun) admin(tb testing.TB) *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.addr))
	if err != nil {
		tb.Fatal(err)
	}
	return kadm.NewClient(cl)
}

// endOffsets sums the high watermarks of topic's partitions.
func (r *brokerRun) endOffsets(ctx context.Context, tb testing.TB, topic string) int64 {
	adm := r.admin(tb)
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		tb.Fatalf("%s: list end offsets of %s: %v", r.name, topic, err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// producer sends copies of one value to one topic, asynchronously, with at
// most produceBuffer bytes of records buffered or in flight.
type producer struct {
	cl    *kgo.Client
	value []byte

	// free recycles records whose promise has run, so the loop measures
	// the client and broker rather than the allocation of kgo.Records.
	free    chan *kgo.Record
	failed  atomic.Pointer[error]
	promise func(*kgo.Record, error)
}

func newProducer(addr, topic string, size int, idempotent bool, extra ...kgo.Opt) (*producer, error) {
	buffered := max(produceBuffer/size, 16)
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(buffered),
	}
	if !idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	}
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	// Values are random: with compression off it makes no difference to
	// the benchmark, but a broker that compressed would get no help.
	value := make([]byte, size)
	rng := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range value {
		value[i] = byte(rng.Uint32())
	}
	p := &producer{cl: cl, value: value, free: make(chan *kgo.Record, buffered+1)}
	p.promise = func(rec *kgo.Record, err error) {
		if err != nil {
			p.failed.CompareAndSwap(nil, &err)
		}
		select {
		case p.free <- rec:
		default:
		}
	}
	return p, nil
}

// produce sends n records and waits for every promise. kgo.Produce blocks
// while MaxBufferedRecords are outstanding, which bounds what is in flight.
func (p *producer) produce(ctx context.Context, n int) error {
	for range n {
		var rec *kgo.Record
		select {
		case rec = <-p.free:
			*rec = kgo.Record{}
		default:
			rec = new(kgo.Record)
		}
		rec.Value = p.value
		p.cl.Produce(ctx, rec, p.promise)
	}
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	if err := p.failed.Load(); err != nil {
		return *err
	}
	return nil
}

func (p *producer) close() { p.cl.Close() }

// warmProducer creates a topic and a producer of size-byte records to it
// that has connected, fetched metadata and (idempotent) its producer id
// with one record; done closes the producer and deletes the topic, so the
// targets do not accumulate data across runs.
func (r *brokerRun) warmProducer(ctx context.Context, b *testing.B, prefix string, size int) (topic string, p *producer, done func()) {
	topic = r.newTopic(ctx, b, fmt.Sprintf("%s-%d", prefix, size))
	p, err := newProducer(r.addr, topic, size, r.idempotent)
	if err != nil {
		r.deleteTopic(ctx, b, topic)
		b.Fatal(err)
	}
	done = func() {
		p.close()
		r.deleteTopic(ctx, b, topic)
	}
	if err := p.produce(ctx, 1); err != nil {
		done()
		b.Fatalf("%s: warm-up produce: %v", r.name, err)
	}
	settle()
	return topic, p, done
}

// benchProduce produces b.N records of size bytes to a new topic. The
// client connects, fetches metadata and (idempotent) its producer id with
// one record before the timer starts; the topic is deleted afterwards so
// the targets do not accumulate data across runs.
func (r *brokerRun) benchProduce(b *testing.B, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	topic, p, done := r.warmProducer(ctx, b, "produce", size)
	defer done()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := r.cpu()
	b.ResetTimer()
	if err := p.produce(ctx, b.N); err != nil {
		b.Fatalf("%s: produce: %v", r.name, err)
	}
	b.StopTimer()
	r.reportCPU(b, cpu)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	idempotent := 0.0
	if r.idempotent {
		idempotent = 1
	}
	b.ReportMetric(idempotent, "idempotent")
	if got, want := r.endOffsets(ctx, b, topic), int64(b.N)+1; got != want {
		b.Fatalf("%s: %s holds %d records, produced %d", r.name, topic, got, want)
	}
}

// benchProduceLatency produces b.N records of size bytes one at a time,
// each waiting for its acknowledgement (acks=all) before the next is sent,
// and reports the median and 99th percentile of those waits.
func (r *brokerRun) benchProduceLatency(b *testing.B, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	_, p, done := r.warmProducer(ctx, b, "latency", size)
	defer done()
	waits := make([]time.Duration, 0, b.N)
	rec := &kgo.Record{}
	b.SetBytes(int64(size))
	cpu := r.cpu()
	b.ResetTimer()
	for range b.N {
		*rec = kgo.Record{Value: p.value}
		start := time.Now()
		if err := p.cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			b.Fatalf("%s: produce: %v", r.name, err)
		}
		waits = append(waits, time.Since(start))
	}
	b.StopTimer()
	r.reportCPU(b, cpu)
	slices.Sort(waits)
	b.ReportMetric(float64(waits[len(waits)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(waits[len(waits)*99/100].Microseconds()), "p99-µs")
}

// fixture returns the consume fixture for size, producing it on first use.
func (r *brokerRun) fixture(ctx context.Context, tb testing.TB, size int) *fixture {
	if f := r.fixtures[size]; f != nil {
		return f
	}
	f := &fixture{topic: r.newTopic(ctx, tb, fmt.Sprintf("fixture-%d", size)), records: consumeFixture / size}
	// A linger makes every batch fill to the client's batch limit on both
	// targets: without one, batch sizes follow how fast each broker acks,
	// and the consumer's per-batch work would differ between targets.
	p, err := newProducer(r.addr, f.topic, size, r.idempotent, kgo.ProducerLinger(100*time.Millisecond))
	if err != nil {
		tb.Fatal(err)
	}
	defer p.close()
	if err := p.produce(ctx, f.records); err != nil {
		tb.Fatalf("%s: producing the fixture: %v", r.name, err)
	}
	if got := r.endOffsets(ctx, tb, f.topic); got != int64(f.records) {
		tb.Fatalf("%s: fixture %s holds %d records, produced %d", r.name, f.topic, got, f.records)
	}
	r.fixtures[size] = f
	return f
}

// benchConsume reads b.N records of size bytes: passes over the fixture
// from offset 0, each with a new consumer (direct partition consumption,
// no group), until b.N records have arrived. Every value's length is
// checked, which also touches each record.
func (r *brokerRun) benchConsume(b *testing.B, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), brokerTimeout)
	defer cancel()
	f := r.fixture(ctx, b, size)
	settle()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := r.cpu()
	b.ResetTimer()
	for left := b.N; left > 0; {
		n, err := r.consumePass(ctx, f, min(left, f.records), size)
		if err != nil {
			b.Fatalf("%s: consume: %v", r.name, err)
		}
		left -= n
	}
	b.StopTimer()
	r.reportCPU(b, cpu)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// consumePass reads want records of f from offset 0 with a new client.
func (r *brokerRun) consumePass(ctx context.Context, f *fixture, want, size int) (int, error) {
	starts := make(map[int32]kgo.Offset, brokerPartitions)
	for p := range int32(brokerPartitions) {
		starts[p] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(r.addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.topic: starts}),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	n := 0
	var sizeErr error
	for n < want {
		fs := cl.PollRecords(ctx, want-n)
		if errs := fs.Errors(); len(errs) > 0 {
			return n, fmt.Errorf("%s[%d]: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if len(rec.Value) != size && sizeErr == nil {
				sizeErr = fmt.Errorf("record %s[%d]@%d has %d bytes, want %d", rec.Topic, rec.Partition, rec.Offset, len(rec.Value), size)
			}
			n++
		})
		if sizeErr != nil {
			return n, sizeErr
		}
	}
	if n > want {
		return n, errors.New("consumer returned more records than polled for")
	}
	return n, nil
}
