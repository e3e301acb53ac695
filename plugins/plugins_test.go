package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/engines/mem"
	"github.com/strata-broker/strata/engines/mmap"
)

// pair is ServeInProcess with the call timeout given.
func pair(t testing.TB, open engine.OpenFunc, dir string, opts engine.Options, timeout time.Duration) (*Engine, error) {
	opts.Settings = map[string]string{SettingCallTimeout: fmt.Sprint(timeout.Milliseconds())}
	return ServeInProcess(t, open, dir, opts)
}

func openMem(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
	return mem.Open(ctx, dir, opts)
}

// TestConformancePair runs the suite over the in-process gRPC pair with
// mem behind it.
func TestConformancePair(t *testing.T) {
	top := t
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return pair(top, openMem, dir, opts, DefaultCallTimeout)
		},
		// mem's volumes live in this process, beside the served engine.
		TearTail:   mem.TearTail,
		Durable:    false,
		FailWrites: func(e engine.Engine) { e.(*Engine).SetFailWrites(context.Background(), true) },
		HealWrites: func(e engine.Engine) { e.(*Engine).SetFailWrites(context.Background(), false) },
	})
}

// openBuiltin starts examples/builtin serving the engine name.
func openBuiltin(ctx context.Context, name, dir string, opts engine.Options) (engine.Engine, error) {
	return OpenCommand(ctx, exec.Command(os.Getenv(builtinEnv), name), dir, opts)
}

// TestConformanceProcess runs the suite through a real plugin process:
// examples/builtin serving mmap. KillChild works through the boundary: the
// child test process opens the plugin as a grandchild, which dies with it
// (parent-death signal), so the SIGKILL stops both mid-append.
func TestConformanceProcess(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return openBuiltin(context.Background(), "mmap", dir, opts)
		},
		TearTail: mmap.TearTail,
		Durable:  true,
		// The suite's FaultFS stays in the host; the plugin fails
		// writes through the FS it gives its engine.
		FailWrites: func(e engine.Engine) { e.(*Engine).SetFailWrites(context.Background(), true) },
		HealWrites: func(e engine.Engine) { e.(*Engine).SetFailWrites(context.Background(), false) },
	})
}

var tp = engine.TopicPartition{Topic: "t", Partition: 0}

func quietOptions() engine.Options {
	return engine.Options{Logger: slog.New(slog.DiscardHandler)}
}

// fakeEngine fails OpenLog with err, or blocks it until release closes.
type fakeEngine struct {
	engine.Engine
	err     error
	release chan struct{}
}

func (f *fakeEngine) OpenLog(ctx context.Context, _ engine.TopicPartition, _ engine.LogOptions) (engine.Log, error) {
	if f.release != nil {
		<-f.release // a hung plugin: ignores ctx
		return nil, errors.New("fake: released")
	}
	return nil, f.err
}

func (f *fakeEngine) Close() error { return nil }

func TestErrorsCrossTheBoundary(t *testing.T) {
	for _, s := range sentinels {
		f := &fakeEngine{err: fmt.Errorf("fake: tp %s: %w", tp, s.err)}
		e, err := pair(t, func(context.Context, string, engine.Options) (engine.Engine, error) { return f, nil }, t.TempDir(), quietOptions(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.OpenLog(context.Background(), tp, engine.LogOptions{})
		if !errors.Is(err, s.err) {
			t.Errorf("%v: host got %v, which does not wrap it", s.err, err)
		}
		if err != nil && !strings.Contains(err.Error(), f.err.Error()) {
			t.Errorf("host error %q lost the plugin's text %q", err, f.err)
		}
		for _, other := range sentinels {
			if other.err != s.err && errors.Is(err, other.err) {
				t.Errorf("%v: host error also wraps %v", s.err, other.err)
			}
		}
		e.Close()
	}
	// Every sentinel of package engine is in the table.
	if len(sentinels) != 10 {
		t.Errorf("%d sentinels mapped; engine/errors.go has 10", len(sentinels))
	}
	// An error wrapping no sentinel stays an I/O error.
	f := &fakeEngine{err: errors.New("fake: disk on fire")}
	e, err := pair(t, func(context.Context, string, engine.Options) (engine.Engine, error) { return f, nil }, t.TempDir(), quietOptions(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.OpenLog(context.Background(), tp, engine.LogOptions{})
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			t.Errorf("plain error %v came back wrapping %v", err, s.err)
		}
	}
	// Errors of a closed engine are ErrClosed, found in the host.
	e.Close()
	if _, err := e.OpenLog(context.Background(), tp, engine.LogOptions{}); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("OpenLog after Close: %v, want ErrClosed", err)
	}
}

func TestCancelAndTimeout(t *testing.T) {
	f := &fakeEngine{release: make(chan struct{})}
	defer close(f.release)
	e, err := pair(t, func(context.Context, string, engine.Options) (engine.Engine, error) { return f, nil }, t.TempDir(), quietOptions(), 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = e.OpenLog(ctx, tp, engine.LogOptions{})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 250*time.Millisecond {
		t.Errorf("cancelled OpenLog: %v after %v; want context.Canceled after about 100ms", err, time.Since(start))
	}
	// No deadline in ctx: the call timeout (300ms here) applies.
	start = time.Now()
	_, err = e.OpenLog(context.Background(), tp, engine.LogOptions{})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("hung OpenLog: %v after %v; want DeadlineExceeded after about 300ms", err, time.Since(start))
	}
	if _, err := callTimeout(map[string]string{SettingCallTimeout: "0"}); !errors.Is(err, engine.ErrInvalidOptions) {
		t.Errorf("%s=0: %v, want ErrInvalidOptions", SettingCallTimeout, err)
	}
	if d, err := callTimeout(map[string]string{SettingCallTimeout: "1500"}); err != nil || d != 1500*time.Millisecond {
		t.Errorf("%s=1500: %v, %v", SettingCallTimeout, d, err)
	}
}

// TestLargeRead reads more than gRPC's 4 MiB message default in one Read,
// through a real process: many 1 MiB batches, and one batch of 5 MiB.
func TestLargeRead(t *testing.T) {
	ctx := context.Background()
	e, err := openBuiltin(ctx, "mmap", t.TempDir(), quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l, err := e.OpenLog(ctx, tp, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var batches []engine.Batch
	var want int
	for i := range 6 {
		size := 1 << 20
		if i == 5 {
			size = 5 << 20
		}
		b, meta := enginetest.NewBatch(int64(i), 1, size, int64(i), byte(i))
		batches = append(batches, engine.Batch{Meta: meta, Data: b})
		want += len(b)
	}
	if n, err := l.(*sizerLog).AppendBatches(ctx, batches); err != nil || n != len(batches) {
		t.Fatalf("AppendBatches: %d, %v", n, err)
	}
	recs, err := l.Read(ctx, 0, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer recs.Release()
	if recs.Len() != want || recs.NextOffset != 6 {
		t.Fatalf("Read: %d bytes up to %d; want %d bytes up to 6", recs.Len(), recs.NextOffset, want)
	}
	if start, end := l.Offsets(); start != 0 || end != 6 {
		t.Fatalf("Offsets: [%d, %d)", start, end)
	}
}

func TestHandshakeMismatch(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"=mismatch")
	e, err := OpenCommand(context.Background(), cmd, t.TempDir(), quietOptions())
	if err == nil {
		e.Close()
		t.Fatal("a plugin of another protocol version was accepted")
	}
	if !strings.Contains(err.Error(), "another protocol") || !strings.Contains(strings.ToLower(err.Error()), "incompatible api version") {
		t.Fatalf("mismatch error does not say so: %v", err)
	}
	t.Logf("mismatch: %v", err)
}

// TestPluginKilled SIGKILLs the plugin under an open log: every call then
// fails promptly with ErrUnavailable while the plugin is down; the host
// logs the exit, starts the plugin again after the backoff, and the log,
// opened again in the new process, has its data (mmap's own recovery).
// Killed again at once, the plugin waits twice the backoff.
func TestPluginKilled(t *testing.T) {
	ctx := context.Background()
	var logs syncBuffer
	opts := engine.Options{
		Logger:   slog.New(slog.NewJSONHandler(&logs, nil)),
		Settings: map[string]string{SettingRestartBackoff: "1500"},
	}
	e, err := openBuiltin(ctx, "mmap", t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pe := e.(*Engine)
	l, err := e.OpenLog(ctx, tp, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range int64(n) {
		b, meta := enginetest.NewBatch(i, 1, 100, 0, 0)
		if err := l.Append(ctx, meta, b); err != nil {
			t.Fatal(err)
		}
	}
	readAll := func() ([]byte, error) {
		recs, err := l.Read(ctx, 0, 1<<20)
		if err != nil {
			return nil, err
		}
		if recs.NextOffset != n {
			return nil, fmt.Errorf("read up to %d, want %d", recs.NextOffset, n)
		}
		return bytes.Join(recs.Chunks, nil), nil
	}
	want, err := readAll()
	if err != nil {
		t.Fatal(err)
	}
	for kill := 1; kill <= 2; kill++ {
		pid := pe.Pid()
		if pid == 0 {
			t.Fatal("no plugin process")
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		calls := map[string]func() error{
			"Append": func() error {
				b, meta := enginetest.NewBatch(n, 1, 10, 0, 0)
				return l.Append(ctx, meta, b)
			},
			"Read":          func() error { _, err := l.Read(ctx, 0, 1<<20); return err },
			"Sync":          func() error { return l.Sync(ctx) },
			"OffsetForTime": func() error { _, err := l.OffsetForTime(ctx, 0); return err },
			"Logs":          func() error { _, err := e.Logs(ctx); return err },
		}
		for name, call := range calls {
			// The connection may take a moment to notice.
			var err error
			for time.Since(killed) < 10*time.Second {
				if err = call(); err != nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Errorf("kill %d: %s after SIGKILL: %v, want ErrUnavailable", kill, name, err)
			}
		}
		if start, end := l.Offsets(); start != 0 || end != n {
			t.Errorf("kill %d: Offsets while down: [%d, %d), want the last known [0, %d)", kill, start, end, n)
		}
		// Back after the backoff (1.5s, then 3s).
		var restartedPid int
		for time.Since(killed) < 20*time.Second {
			if p := pe.Pid(); p != 0 && p != pid {
				restartedPid = p
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		down := time.Since(killed)
		if restartedPid == 0 {
			t.Fatalf("kill %d: the plugin was not restarted in %v; log:\n%s", kill, down, logs.String())
		}
		if wantMin := time.Duration(kill) * 1500 * time.Millisecond; down < wantMin {
			t.Errorf("kill %d: restarted after %v, before the backoff of %v", kill, down, wantMin)
		}
		t.Logf("kill %d: pid %d restarted as %d after %v", kill, pid, restartedPid, down)
		got, err := readAll()
		if err != nil {
			t.Fatalf("kill %d: Read after restart: %v", kill, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("kill %d: the log's bytes differ after the restart", kill)
		}
		if start, end := l.Offsets(); start != 0 || end != n {
			t.Errorf("kill %d: Offsets after restart: [%d, %d), want [0, %d)", kill, start, end, n)
		}
	}
	out := logs.String()
	if c := strings.Count(out, `"msg":"plugin exited; restarting"`); c != 2 {
		t.Errorf("%d exit lines logged, want 2:\n%s", c, out)
	}
	if c := strings.Count(out, `"msg":"plugin restarted"`); c != 2 {
		t.Errorf("%d restart lines logged, want 2:\n%s", c, out)
	}
	// Appends go on where the log ended.
	b, meta := enginetest.NewBatch(n, 1, 10, 0, 0)
	if err := l.Append(ctx, meta, b); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs")
	}
	if pid := pe.Pid(); pid != 0 {
		t.Errorf("Pid after Close: %d", pid)
	}
}

// TestPluginHangs: a plugin whose engine stops answering one call fails
// that call at the deadline, and answers the others.
func TestPluginHangs(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"=hang")
	opts := quietOptions()
	opts.Settings = map[string]string{SettingCallTimeout: "300"}
	e, err := OpenCommand(context.Background(), cmd, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	start := time.Now()
	_, err = e.OpenLog(context.Background(), engine.TopicPartition{Topic: "hang"}, engine.LogOptions{})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("hung OpenLog: %v after %v; want DeadlineExceeded after about 300ms", err, time.Since(start))
	}
	if _, err := e.OpenLog(context.Background(), tp, engine.LogOptions{}); err != nil {
		t.Errorf("OpenLog beside the hung one: %v", err)
	}
}

// TestMinimalProcess runs examples/minimal as a real plugin process. Its
// conformance run is in its own package, in process, since its logs do not
// outlive the process (the suite reopens engines).
func TestMinimalProcess(t *testing.T) {
	ctx := context.Background()
	e, err := Open(ctx, os.Getenv(minimalEnv), t.TempDir(), quietOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l, err := e.OpenLog(ctx, tp, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, meta := enginetest.NewBatch(0, 3, 100, 1000, 7)
	if err := l.Append(ctx, meta, b); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, meta, b); !errors.Is(err, engine.ErrNonContiguous) {
		t.Fatalf("Append at 0 again: %v, want ErrNonContiguous", err)
	}
	recs, err := l.Read(ctx, 1, 1<<20)
	if err != nil || len(recs.Chunks) != 1 || string(recs.Chunks[0]) != string(b) || recs.NextOffset != 3 {
		t.Fatalf("Read: %d chunks up to %d, %v", len(recs.Chunks), recs.NextOffset, err)
	}
	recs.Release()
	if _, err := l.Read(ctx, 4, 1<<20); !errors.Is(err, engine.ErrOffsetOutOfRange) {
		t.Fatalf("Read past the end: %v, want ErrOffsetOutOfRange", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(ctx); !errors.Is(err, engine.ErrClosed) {
		t.Fatalf("Sync after Close: %v, want ErrClosed", err)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPluginLogs checks that what the plugin's engine logs reaches the
// host's Options.Logger.
func TestPluginLogs(t *testing.T) {
	var buf syncBuffer
	opts := engine.Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), serveEnv+"=log")
	e, err := OpenCommand(context.Background(), cmd, t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for start := time.Now(); !strings.Contains(buf.String(), "hello from the plugin"); {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the plugin's log line did not reach the host; host log:\n%s", buf.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("host log: %s", buf.String())
}

// TestRestartForgetsClosedLogs: logs deleted before a restart, or closed
// while the plugin is down, are not opened again in the new process, so
// they can be opened (or created) again afterwards.
func TestRestartForgetsClosedLogs(t *testing.T) {
	ctx := context.Background()
	opts := quietOptions()
	opts.Settings = map[string]string{SettingRestartBackoff: "300"}
	e, err := openBuiltin(ctx, "mmap", t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pe := e.(*Engine)
	gone := engine.TopicPartition{Topic: "gone"}
	if _, err := e.OpenLog(ctx, gone, engine.LogOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteLog(ctx, gone); err != nil {
		t.Fatal(err)
	}
	var logs []engine.Log
	for i := range int32(20) {
		l, err := e.OpenLog(ctx, engine.TopicPartition{Topic: "closed", Partition: i}, engine.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	pid := pe.Pid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Close them while the plugin is down or being restarted.
	for _, l := range logs {
		l.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for pe.Pid() == 0 || pe.Pid() == pid {
		if time.Now().After(deadline) {
			t.Fatal("not restarted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tps, err := e.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range tps {
		if tp == gone {
			t.Errorf("the deleted log is back after the restart: %v", tps)
		}
	}
	if _, err := e.OpenLog(ctx, gone, engine.LogOptions{}); err != nil {
		t.Errorf("OpenLog of the deleted log after the restart: %v", err)
	}
	for i := range int32(20) {
		if _, err := e.OpenLog(ctx, engine.TopicPartition{Topic: "closed", Partition: i}, engine.LogOptions{}); err != nil {
			t.Errorf("OpenLog of closed-%d after the restart: %v", i, err)
		}
	}
}
