package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
	_ "github.com/strata-broker/strata/engines/mem"
	_ "github.com/strata-broker/strata/engines/mmap"
)

// testBroker is a broker serving on a loopback port in a temporary dir.
type testBroker struct {
	t     *testing.T
	cfg   config.Config
	coord coordination.Coordinator
	b     *Broker
	addr  string
	done  chan error
}

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("STRATA_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// startBroker starts a broker; edit adjusts its config first.
func startBroker(t *testing.T, edit ...func(*config.Config)) *testBroker {
	t.Helper()
	cfg := config.Default()
	cfg.Listeners = []config.Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 0}}
	cfg.AdvertisedListeners = []config.Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 0}}
	cfg.LogDirs = []string{t.TempDir()}
	for _, e := range edit {
		e(&cfg)
	}
	tb := &testBroker{t: t, cfg: cfg}
	tb.coord = newTestCoordinator(t, cfg)
	tb.start()
	t.Cleanup(tb.stop)
	return tb
}

func (tb *testBroker) start() {
	tb.t.Helper()
	b, err := New(Options{Config: tb.cfg, Coordinator: tb.coord, Logger: testLogger(tb.t)})
	if err != nil {
		tb.t.Fatalf("New: %v", err)
	}
	tb.b = b
	tb.addr = b.Addrs()[0].String()
	tb.done = make(chan error, 1)
	go func() { tb.done <- b.Serve(context.Background()) }()
}

// stop shuts the broker down and waits for Serve to return.
func (tb *testBroker) stop() {
	if tb.b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tb.b.Shutdown(ctx); err != nil {
		tb.t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-tb.done:
		// ErrServerClosed: the test stopped the broker before the Serve
		// goroutine ran.
		if err != nil && !errors.Is(err, ErrServerClosed) {
			tb.t.Errorf("Serve: %v", err)
		}
	case <-ctx.Done():
		tb.t.Errorf("Serve did not return after Shutdown")
	}
	tb.b = nil
}

// restart shuts the broker down and opens a new one on the same dirs.
func (tb *testBroker) restart() {
	tb.t.Helper()
	tb.stop()
	tb.coord = reopenTestCoordinator(tb.t, tb.cfg, tb.coord)
	tb.start()
}

func (tb *testBroker) client(opts ...kgo.Opt) *kgo.Client {
	tb.t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(tb.addr), kgo.RetryTimeout(10 * time.Second)}, opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Cleanup(cl.Close)
	return cl
}

func (tb *testBroker) admin() *kadm.Client {
	return kadm.NewClient(tb.client())
}

func (tb *testBroker) createTopic(name string, partitions int32, configs map[string]*string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tb.admin().CreateTopic(ctx, partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		tb.t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// request sends a raw request at the version set in it.
func (tb *testBroker) request(cl *kgo.Client, req kmsg.Request) kmsg.Response {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := cl.Request(ctx, req)
	if err != nil {
		tb.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// direct returns a function that sends requests straight to this broker on
// one connection of cl (a new client if cl is nil), not where a client
// would route them (a group's coordinator, a partition's leader).
func (tb *testBroker) direct(cl *kgo.Client) func(kmsg.Request) kmsg.Response {
	if cl == nil {
		cl = tb.client()
	}
	b := cl.SeedBrokers()[0]
	return func(req kmsg.Request) kmsg.Response {
		tb.t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		resp, err := b.Request(ctx, req)
		if err != nil {
			tb.t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
		}
		return resp
	}
}

// pinned returns a client pinned to one version of a key, so that
// Request sends exactly that version.
func (tb *testBroker) pinned(key int16, version int16) *kgo.Client {
	maxV, minV := kversion.Stable(), kversion.Stable()
	minV.EachMaxKeyVersion(func(k, _ int16) { minV.SetMaxKeyVersion(k, 0) })
	maxV.SetMaxKeyVersion(key, version)
	minV.SetMaxKeyVersion(key, version)
	return tb.client(kgo.MaxVersions(maxV), kgo.MinVersions(minV))
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// logOffsets reads a partition's offsets straight from its log.
func (tb *testBroker) logOffsets(topic string, partition int32) (start, end int64) {
	tb.t.Helper()
	p := tb.b.parts.Get(context.Background(), engine.TopicPartition{Topic: topic, Partition: partition})
	if p == nil || p.Log() == nil {
		tb.t.Fatalf("no log for %s-%d", topic, partition)
	}
	return p.Log().Offsets()
}

// rawConn is a plain TCP connection for speaking bytes at the broker.
func writeFrame(w io.Writer, body []byte) error {
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(body)))
	_, err := w.Write(append(size[:], body...))
	return err
}
