package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumed is one message a client script printed: "partition offset value".
type consumed struct {
	partition int32
	offset    int64
	value     string
}

// parseScript parses a script's output: "sent N", then one consumed
// message a line.
func parseScript(t *testing.T, out []byte, count int) []consumed {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	if !sc.Scan() || sc.Text() != fmt.Sprintf("sent %d", count) {
		t.Fatalf("script output does not start with %q:\n%s", fmt.Sprintf("sent %d", count), out)
	}
	var got []consumed
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		if len(f) != 3 {
			t.Fatalf("bad line %q", sc.Text())
		}
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		got = append(got, consumed{int32(p), o, f[2]})
	}
	return got
}

// checkPartitioned checks that got holds exactly want, each partition's
// messages at offsets 0, 1, 2, ... and in the order of want, and returns
// the partitions seen.
func checkPartitioned(t *testing.T, got []consumed, want []string) []int32 {
	t.Helper()
	index := map[string]int{}
	for i, w := range want {
		index[w] = i
	}
	last := map[int32]int{}   // partition → index in want of its last message
	next := map[int32]int64{} // partition → next offset expected
	seen := make([]bool, len(want))
	for _, c := range got {
		i, ok := index[c.value]
		if !ok {
			t.Fatalf("read %q, which was not sent", c.value)
		}
		if seen[i] {
			t.Fatalf("read %q twice", c.value)
		}
		seen[i] = true
		if c.offset != next[c.partition] {
			t.Errorf("partition %d: %q at offset %d, want %d", c.partition, c.value, c.offset, next[c.partition])
		}
		next[c.partition] = c.offset + 1
		if l, ok := last[c.partition]; ok && l > i {
			t.Errorf("partition %d: %q read after %q, sent before it", c.partition, c.value, want[l])
		}
		last[c.partition] = i
	}
	for i, s := range seen {
		if !s {
			t.Errorf("%q was sent but not read", want[i])
		}
	}
	var parts []int32
	for p := range next {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	return parts
}

// kafkaPythonWant is what testdata/kafka_python.py sends.
func kafkaPythonWant(count int) []string {
	want := []string{"content message"}
	for i := 1; i < count; i++ {
		want = append(want, fmt.Sprintf("content message %d", i))
	}
	return want
}

// partitionsOf returns the partition count of topic, asking with franz-go.
func partitionsOf(t *testing.T, addr, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	td, ok := topics[topic]
	if !ok || td.Err != nil {
		t.Fatalf("topic %s: %+v", topic, td)
	}
	return len(td.Partitions)
}

// TestKafkaPythonCreateTopics: kafka-python 2.0.2 produces with acks=all to
// a topic KAFKA_CREATE_TOPICS made with 3 partitions and reads every
// message back, without a group, in order per partition.
func TestKafkaPythonCreateTopics(t *testing.T) {
	t.Parallel()
	py := python(t, "kafka", "python3-kafka")
	b := startBroker(t, t.TempDir(), []string{"KAFKA_CREATE_TOPICS=Topic1:3:1"})
	if !strings.Contains(b.Log.String(), "created topic") {
		t.Fatalf("KAFKA_CREATE_TOPICS did not create Topic1")
	}
	const count = 30
	out, _ := runTool(t, 60*time.Second, nil, py, "testdata/kafka_python.py", b.Addr, "Topic1", strconv.Itoa(count))
	got := parseScript(t, out, count)
	parts := checkPartitioned(t, got, kafkaPythonWant(count))
	for _, p := range parts {
		if p < 0 || p > 2 {
			t.Errorf("read from partition %d of a 3-partition topic", p)
		}
	}
	if n := partitionsOf(t, b.Addr, "Topic1"); n != 3 {
		t.Errorf("Topic1 has %d partitions, want 3", n)
	}
	b.Stop()
}

// TestKafkaPythonAutoCreate: as TestKafkaPythonCreateTopics, the topic
// created by kafka-python's metadata request (auto.create.topics.enable,
// num.partitions=3).
func TestKafkaPythonAutoCreate(t *testing.T) {
	t.Parallel()
	py := python(t, "kafka", "python3-kafka")
	b := startBroker(t, t.TempDir(), nil, "num.partitions=3")
	const count = 30
	out, _ := runTool(t, 60*time.Second, nil, py, "testdata/kafka_python.py", b.Addr, "Topic1", strconv.Itoa(count))
	checkPartitioned(t, parseScript(t, out, count), kafkaPythonWant(count))
	if !strings.Contains(b.Log.String(), "auto-created topic") {
		t.Errorf("no auto-created topic in the broker log")
	}
	if n := partitionsOf(t, b.Addr, "Topic1"); n != 3 {
		t.Errorf("auto-created Topic1 has %d partitions, want num.partitions=3", n)
	}
	b.Stop()
}

// TestConfluentIdempotent: confluent-kafka (librdkafka) with
// enable.idempotence=True and acks=all gets a successful delivery report for
// every message (this needs InitProducerId), and a consumer with assign()
// reads them back in order.
func TestConfluentIdempotent(t *testing.T) {
	t.Parallel()
	py := python(t, "confluent_kafka", "python3-confluent-kafka")
	b := startBroker(t, t.TempDir(), []string{"KAFKA_CREATE_TOPICS=idem:1:1"})
	const count = 200
	out, _ := runTool(t, 60*time.Second, nil, py, "testdata/confluent_idempotent.py", b.Addr, "idem", strconv.Itoa(count))
	var want []string
	for i := range count {
		want = append(want, fmt.Sprintf("idempotent %d", i))
	}
	got := parseScript(t, out, count)
	if parts := checkPartitioned(t, got, want); !slices.Equal(parts, []int32{0}) {
		t.Errorf("read from partitions %v, want [0]", parts)
	}
	// The batches are stored as the idempotent producer wrote them: with
	// the producer id InitProducerId gave and sequence numbers.
	for _, r := range consumeAll(t, b.Addr, "idem", 1)[0] {
		if r.ProducerID < 0 {
			t.Fatalf("offset %d stored with producer id %d, want the one InitProducerId gave", r.Offset, r.ProducerID)
		}
	}
	b.Stop()
}

// kcatMessages are produced by kcat, one a line: every byte value but the
// newline delimiter, and a large compressible message.
func kcatMessages(codec string) [][]byte {
	var all []byte
	for c := range 256 {
		if c != '\n' {
			all = append(all, byte(c))
		}
	}
	return [][]byte{
		[]byte("hello " + codec),
		all,
		bytes.Repeat([]byte("compressible "+codec+" "), 5000),
		[]byte("x"),
		[]byte("last " + codec),
	}
}

// TestKcat: kcat produces with each compression codec and consumes from the
// beginning to the end (-e), getting every message back byte for byte; the
// broker stores the batches with the producer's codec; kcat -L lists the
// broker and the topics.
func TestKcat(t *testing.T) {
	kcat := needTool(t, "kcat", "kcat")
	b := startBroker(t, t.TempDir(), nil)
	codecs := []struct {
		name string
		id   uint8 // attributes bits 0-2
	}{{"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}}

	t.Run("codecs", func(t *testing.T) {
		for _, c := range codecs {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				topic := "kcat-" + c.name
				msgs := kcatMessages(c.name)
				in := append(bytes.Join(msgs, []byte("\n")), '\n')
				_, perr := runTool(t, 30*time.Second, in, kcat, "-P", "-b", b.Addr, "-t", topic, "-z", c.name,
					"-X", "acks=all", "-X", "linger.ms=100", "-d", "msg")

				// %S is the payload's length, so the payload can be cut
				// out byte-exactly.
				format := "%p %o %S\n%s"
				out, stderr, err := runToolErr(10*time.Second, nil, kcat, "-C", "-b", b.Addr, "-t", topic,
					"-o", "beginning", "-e", "-f", format)
				if err != nil {
					t.Errorf("kcat -C -e did not stop at the end of the partition: %v\nstderr:\n%s", err, tail(string(stderr), 4))
					// Its output is lost with it (buffered): read the
					// messages again by count to check them all the same.
					out, _ = runTool(t, 10*time.Second, nil, kcat, "-C", "-b", b.Addr, "-t", topic,
						"-o", "beginning", "-c", strconv.Itoa(len(msgs)), "-f", format)
				}
				got := parseKcat(t, out)
				if len(got) != len(msgs) {
					t.Fatalf("kcat read %d messages, want %d", len(got), len(msgs))
				}
				for i, g := range got {
					if g.partition != 0 || g.offset != int64(i) || g.value != string(msgs[i]) {
						t.Errorf("message %d: partition %d offset %d, %d bytes %.40q; want partition 0 offset %d, %d bytes %.40q",
							i, g.partition, g.offset, len(g.value), g.value, i, len(msgs[i]), msgs[i])
					}
				}
				if bytes.Contains(perr, []byte("does not support compression type "+c.name)) {
					// librdkafka before 2.11.1 sends gzip and snappy only
					// to a broker listing Produce v0, and lz4 only to one
					// that also lists FindCoordinator v0; otherwise it
					// silently sends the batch uncompressed. Strata lists
					// both.
					t.Fatalf("kcat (librdkafka) did not compress with %s: %s", c.name, firstLine(perr, "does not support compression"))
				}
				// librdkafka sends a batch uncompressed when the codec
				// would not make it smaller, which a batch without the
				// compressible message may be, depending on how the
				// messages fell into batches.
				checkStoredCodec(t, b.Addr, topic, c.id, msgs, 2)
			})
		}
	})

	// The other way round: franz-go produces batches compressed with each
	// codec, and kcat reads them back.
	t.Run("consume", func(t *testing.T) {
		for _, c := range codecs {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				topic := "kgo-" + c.name
				msgs := kcatMessages(c.name)
				produceCompressed(t, b.Addr, topic, c.name, msgs)
				checkStoredCodec(t, b.Addr, topic, c.id, msgs)
				out, _ := runTool(t, 10*time.Second, nil, kcat, "-C", "-b", b.Addr, "-t", topic,
					"-o", "beginning", "-c", strconv.Itoa(len(msgs)), "-f", "%p %o %S\n%s")
				got := parseKcat(t, out)
				if len(got) != len(msgs) {
					t.Fatalf("kcat read %d messages, want %d", len(got), len(msgs))
				}
				for i, g := range got {
					if g.partition != 0 || g.offset != int64(i) || g.value != string(msgs[i]) {
						t.Errorf("message %d: partition %d offset %d, %d bytes %.40q; want partition 0 offset %d, %d bytes %.40q",
							i, g.partition, g.offset, len(g.value), g.value, i, len(msgs[i]), msgs[i])
					}
				}
			})
		}
	})

	t.Run("metadata", func(t *testing.T) {
		out, _ := runTool(t, 15*time.Second, nil, kcat, "-L", "-J", "-b", b.Addr)
		var md struct {
			Brokers []struct {
				ID   int32  `json:"id"`
				Name string `json:"name"`
			} `json:"brokers"`
			Topics []struct {
				Topic      string `json:"topic"`
				Partitions []struct {
					Partition int32 `json:"partition"`
					Leader    int32 `json:"leader"`
				} `json:"partitions"`
			} `json:"topics"`
		}
		if err := json.Unmarshal(out, &md); err != nil {
			t.Fatalf("kcat -L -J: %v\n%s", err, out)
		}
		if len(md.Brokers) != 1 || md.Brokers[0].Name != b.Addr {
			t.Errorf("brokers %+v, want one at %s", md.Brokers, b.Addr)
		}
		for _, c := range codecs {
			i := slices.IndexFunc(md.Topics, func(tp struct {
				Topic      string `json:"topic"`
				Partitions []struct {
					Partition int32 `json:"partition"`
					Leader    int32 `json:"leader"`
				} `json:"partitions"`
			}) bool {
				return tp.Topic == "kcat-"+c.name
			})
			if i < 0 {
				t.Errorf("kcat -L does not list kcat-%s:\n%s", c.name, out)
				continue
			}
			if ps := md.Topics[i].Partitions; len(ps) != 1 || ps[0].Leader != md.Brokers[0].ID {
				t.Errorf("kcat-%s partitions %+v, want one led by broker %d", c.name, ps, md.Brokers[0].ID)
			}
		}
	})
	b.Stop()
}

// parseKcat parses kcat -f '%p %o %S\n%s' output.
func parseKcat(t *testing.T, out []byte) []consumed {
	t.Helper()
	var got []consumed
	for len(out) > 0 {
		nl := bytes.IndexByte(out, '\n')
		if nl < 0 {
			t.Fatalf("kcat output: no header line in %.60q", out)
		}
		var c consumed
		var size int
		if _, err := fmt.Sscanf(string(out[:nl]), "%d %d %d", &c.partition, &c.offset, &size); err != nil || size < 0 || nl+1+size > len(out) {
			t.Fatalf("kcat output: bad header %q (%v)", out[:nl], err)
		}
		c.value = string(out[nl+1 : nl+1+size])
		out = out[nl+1+size:]
		got = append(got, c)
	}
	return got
}

// checkStoredCodec fetches topic's partition 0 with franz-go and checks
// the records are msgs, in batches compressed with codec: the broker keeps
// batches as produced. If only is given, only the batches of the records
// at those indexes must be compressed; the others may be plain.
func checkStoredCodec(t *testing.T, addr, topic string, codec uint8, msgs [][]byte, only ...int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var n int
	for n < len(msgs) {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("franz-go fetch of %s: %v", topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if n < len(msgs) && !bytes.Equal(r.Value, msgs[n]) {
				t.Errorf("franz-go: record %d differs", n)
			}
			if got := r.Attrs.CompressionType(); got != codec && (len(only) == 0 || slices.Contains(only, n) || got != 0) {
				t.Errorf("record %d stored with compression %d, want %d", n, got, codec)
			}
			n++
		})
	}
}

// dialOK reports whether addr accepts a TCP connection.
func dialOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// firstLine returns the first line of b containing sub.
func firstLine(b []byte, sub string) string {
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// produceCompressed produces msgs to partition 0 of topic with franz-go in
// one batch compressed with codec.
func produceCompressed(t *testing.T, addr, topic, codec string, msgs [][]byte) {
	t.Helper()
	codecs := map[string]kgo.CompressionCodec{
		"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(codecs[codec]), kgo.ProducerLinger(time.Second),
		kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for _, m := range msgs {
		rs = append(rs, &kgo.Record{Value: m, Partition: 0})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("franz-go produce with %s: %v", codec, err)
	}
}
