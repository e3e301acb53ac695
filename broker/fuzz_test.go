package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
	"github.com/strata-broker/strata/config"
)

// panicFlag is a slog handler that notices the broker's "handler
// panicked" record: the per-connection recover keeps the broker up, but a
// panic is a bug the fuzzer must report.
type panicFlag struct {
	slog.Handler
	hit *atomic.Pointer[string]
}

func (h panicFlag) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panicked") {
		var b strings.Builder
		b.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
		s := b.String()
		h.hit.CompareAndSwap(nil, &s)
	}
	return nil
}

func (h panicFlag) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicFlag) WithGroup(string) slog.Handler      { return h }

// FuzzRequest sends arbitrary bytes, framed as one request, to a running
// broker: it must never panic (not even in a handler, where the connection
// would otherwise hide it), and must keep accepting connections. Seeds are
// real requests of the served APIs, so mutations reach every handler.
func FuzzRequest(f *testing.F) {
	cfg := config.Default()
	cfg.Listeners = []config.Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 0}}
	cfg.AdvertisedListeners = cfg.Listeners
	cfg.LogDirs = []string{f.TempDir()}
	cfg.SocketRequestMaxBytes = 1 << 20
	var hit atomic.Pointer[string]
	log := slog.New(panicFlag{Handler: slog.DiscardHandler, hit: &hit})
	b, err := New(Options{Config: cfg, Coordinator: newTestCoordinator(f, cfg), Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve(context.Background()) }()
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		b.Shutdown(ctx)
		<-served
	})
	addr := b.Addrs()[0].String()

	// A topic with data, so produce, fetch and list offsets reach the log.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("fuzz"), kgo.AllowAutoTopicCreation())
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("seed")}).FirstErr(); err != nil {
		f.Fatal(err)
	}
	cl.Close()

	form := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	seed := func(r kmsg.Request) {
		for v := r.GetVersion(); v >= 0; v-- {
			r.SetVersion(v)
			f.Add(form.AppendRequest(nil, r, 1)[4:]) // the frame without its size
			if v < r.MaxVersion()-3 {
				break
			}
		}
	}
	batch := batchtest.Make(f, kgo.NoCompression(), 1, "a", "b")
	produce := kmsg.NewPtrProduceRequest()
	produce.Acks = 1
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "fuzz"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = batch
	pt.Partitions = append(pt.Partitions, pp)
	produce.Topics = append(produce.Topics, pt)
	produce.SetVersion(produce.MaxVersion())
	seed(produce)
	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "fuzz"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fetch.SetVersion(12)
	seed(fetch)
	for _, r := range []kmsg.Request{
		kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrListOffsetsRequest(),
		kmsg.NewPtrCreateTopicsRequest(), kmsg.NewPtrDeleteTopicsRequest(), kmsg.NewPtrInitProducerIDRequest(),
		kmsg.NewPtrFindCoordinatorRequest(), kmsg.NewPtrDescribeConfigsRequest(), kmsg.NewPtrDeleteRecordsRequest(),
		kmsg.NewPtrOffsetForLeaderEpochRequest(), kmsg.NewPtrCreatePartitionsRequest(), kmsg.NewPtrDescribeClusterRequest(),
		kmsg.NewPtrDescribeLogDirsRequest(), kmsg.NewPtrIncrementalAlterConfigsRequest(), kmsg.NewPtrAlterConfigsRequest(),
	} {
		r.SetVersion(r.MaxVersion())
		seed(r)
	}
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))

	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) > 1<<16 {
			return
		}
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("broker stopped accepting connections: %v", err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		msg := make([]byte, 4, 4+len(frame))
		msg[0], msg[1], msg[2], msg[3] = byte(len(frame)>>24), byte(len(frame)>>16), byte(len(frame)>>8), byte(len(frame))
		if _, err := nc.Write(append(msg, frame...)); err != nil {
			return // closed on us already: fine
		}
		nc.(*net.TCPConn).CloseWrite()
		// The broker answers, or closes: either way the read ends. A
		// parked fetch may hold it until its max wait (bounded by the
		// deadline above).
		if _, err := io.Copy(io.Discard, nc); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return
			}
		}
		if p := hit.Load(); p != nil {
			t.Fatalf("a handler panicked on this input: %s", *p)
		}
	})
}

func isReset(err error) bool { return strings.Contains(err.Error(), "connection reset") }
