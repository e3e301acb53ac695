//go:build linux

package zktest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

func TestStartCreateGet(t *testing.T) {
	s := Start(t)
	if !s.Running() {
		t.Fatal("Running() = false after Start")
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || s.Connect() != s.Addr() {
		t.Fatalf("Addr() = %q, Connect() = %q", s.Addr(), s.Connect())
	}
	// Its own process group, so Stop and Kill reach the whole JVM and a
	// terminal's ^C does not race the test's cleanup.
	pid := s.cmd.Process.Pid
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Errorf("Getpgid(%d) = %d, %v; want its own group", pid, pgid, err)
	}

	c := connect(t, s, 2*time.Second)
	if _, err := c.Create("/strata", []byte("hello"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	got, _, err := c.Get("/strata")
	if err != nil || string(got) != "hello" {
		t.Fatalf("Get = %q, %v; want hello", got, err)
	}
}

func TestStopRestartKeepsDataAndSession(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	// Longer than any restart on a loaded machine, so the session survives.
	c := connect(t, s, 20*time.Second)
	if _, err := c.Create("/persistent", []byte("kept"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("Create persistent: %v", err)
	}
	if _, err := c.Create("/ephemeral", nil, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("Create ephemeral: %v", err)
	}
	session := c.SessionID()

	s.Stop()
	if s.Running() {
		t.Fatal("Running() = true after Stop")
	}
	s.Stop() // stopping a stopped server does nothing
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Fatalf("%s accepts connections after Stop", addr)
	}

	s.Restart(t)
	if !s.Running() || s.Addr() != addr {
		t.Fatalf("after Restart: Running() = %v, Addr() = %q; want true, %q", s.Running(), s.Addr(), addr)
	}
	// The same client reconnects by itself; its request waits for that.
	got, _, err := c.Get("/persistent")
	if err != nil || string(got) != "kept" {
		t.Fatalf("Get after Restart = %q, %v; want kept", got, err)
	}
	waitState(t, c, zk.StateHasSession)
	if c.SessionID() != session {
		t.Errorf("session %#x after Restart, want %#x kept", c.SessionID(), session)
	}
	ok, stat, err := c.Exists("/ephemeral")
	if err != nil || !ok || stat.EphemeralOwner != session {
		t.Errorf("ephemeral after Restart: exists %v, owner %#x, %v; want owned by %#x", ok, stat.EphemeralOwner, err, session)
	}

	// Restart of a running server stops it first.
	s.Restart(t)
	if _, _, err := c.Get("/persistent"); err != nil {
		t.Fatalf("Get after second Restart: %v", err)
	}
}

func TestKill(t *testing.T) {
	s := Start(t)
	c := connect(t, s, 2*time.Second)
	if _, err := c.Create("/committed", []byte("x"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("Create: %v", err)
	}
	s.Kill()
	if s.Running() {
		t.Fatal("Running() = true after Kill")
	}
	if imok(s.Addr()) {
		t.Fatalf("%s answers after Kill", s.Addr())
	}
	s.Kill()

	// A committed znode survives the crash.
	s.Restart(t)
	c2 := connect(t, s, 2*time.Second)
	if got, _, err := c2.Get("/committed"); err != nil || string(got) != "x" {
		t.Fatalf("Get after Kill and Restart = %q, %v; want x", got, err)
	}
}

func TestTwoServers(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("both servers on %s", a.Addr())
	}
	if a.dataDir() == b.dataDir() {
		t.Fatalf("both servers in %s", a.dataDir())
	}
	ca, cb := connect(t, a, 2*time.Second), connect(t, b, 2*time.Second)
	if _, err := ca.Create("/only-a", nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("Create on a: %v", err)
	}
	if ok, _, err := cb.Exists("/only-a"); err != nil || ok {
		t.Fatalf("Exists on b = %v, %v; want false: the servers share data", ok, err)
	}
}

// A test that needs ZooKeeper must fail, not skip, where it is missing:
// a skipped test passes CI while testing nothing.
func TestMissingDependencyFails(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    *string
	}{
		{"java", &javaPath},
		{"jar", &jarPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := *tc.v
			*tc.v = "/nonexistent/zktest/" + tc.name
			t.Cleanup(func() { *tc.v = old })

			r := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Start(r)
				t.Error("Start returned without java or the jar")
			}()
			<-done
			if r.skipped {
				t.Error("Start skipped the test")
			}
			if !strings.Contains(r.fatal, "make test") || !strings.Contains(r.fatal, "zookeeper package") {
				t.Errorf("Start's failure %q does not say that `make test` installs the zookeeper package", r.fatal)
			}
		})
	}
}

// The JVM must not outlive a test process that dies without cleanup: a
// child test process starts a server and is SIGKILLed, and the server's
// port must close.
func TestServerDiesWithTestProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperChild$", "-test.count=1")
	// Whatever the killed child leaves in its t.TempDir is removed with ours.
	cmd.Env = append(os.Environ(), helperEnv+"=1", "TMPDIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "zktest-child-addr "); ok {
				addrc <- a
				return
			}
		}
		close(addrc)
	}()
	var addr string
	select {
	case a, ok := <-addrc:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("child exited without starting a server; stderr:\n%s", stderr.String())
		}
		addr = a
	case <-time.After(startTimeout + 10*time.Second):
		t.Fatal("child did not start a server")
	}
	if !imok(addr) {
		t.Fatalf("child's server on %s does not answer ruok with imok", addr)
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return // the JVM is gone
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("ZooKeeper on %s still serving 10 s after its test process was killed", addr)
		}
		time.Sleep(pollInterval)
	}
}

const helperEnv = "ZKTEST_HELPER_CHILD"

// TestHelperChild is the child process of TestServerDiesWithTestProcess; run
// directly it does nothing.
func TestHelperChild(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	s := Start(t)
	fmt.Printf("zktest-child-addr %s\n", s.Addr())
	time.Sleep(time.Minute) // killed by the parent long before
}

func imok(addr string) bool {
	return probe(addr, "ruok", func(answer string) bool { return answer == "imok" })
}

// connect opens a client session to s with the given timeout and closes it
// when the test ends. The client's log goes to t.Log.
func connect(t *testing.T, s *Server, timeout time.Duration) *zk.Conn {
	t.Helper()
	l := &testLogger{t: t}
	c, _, err := zk.Connect([]string{s.Addr()}, timeout, zk.WithLogger(l))
	if err != nil {
		t.Fatalf("zk.Connect(%s): %v", s.Addr(), err)
	}
	t.Cleanup(func() {
		c.Close()
		l.stop()
	})
	return c
}

// waitState waits up to 10 s for the client to reach want.
func waitState(t *testing.T, c *zk.Conn, want zk.State) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.State() != want {
		if time.Now().After(deadline) {
			t.Fatalf("client state %v, want %v", c.State(), want)
		}
		time.Sleep(pollInterval)
	}
}

// testLogger sends the client's log to t.Log until stop. The client's
// goroutines can outlive Close, and t.Log after the test has ended panics.
type testLogger struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *testLogger) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("zk client: "+format, args...)
	}
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// fatalRecorder is a testing.TB whose Fatal and Skip record the message
// and end the calling goroutine, as the real ones do.
type fatalRecorder struct {
	testing.TB
	fatal   string
	skipped bool
}

func (r *fatalRecorder) Fatal(args ...any) { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *fatalRecorder) FailNow()             { r.fatal = "FailNow"; runtime.Goexit() }
func (r *fatalRecorder) Skip(...any)          { r.skipped = true; runtime.Goexit() }
func (r *fatalRecorder) Skipf(string, ...any) { r.skipped = true; runtime.Goexit() }
func (r *fatalRecorder) SkipNow()             { r.skipped = true; runtime.Goexit() }

// Start's retry on a new port rests on this: a server whose port is taken
// exits rather than serving nothing.
func TestTakenPortExits(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := Start(t)
	s.Stop()
	s.port = l.Addr().(*net.TCPAddr).Port
	if err := s.start(time.Now().Add(startTimeout)); !errors.Is(err, errExited) {
		t.Fatalf("start on a taken port: %v, want %v", err, errExited)
	}
	if s.Running() {
		t.Fatal("Running() = true after a failed start")
	}
}

// Restart waits for its port while something else holds it.
func TestRestartWaitsForPort(t *testing.T) {
	s := Start(t)
	s.Stop()
	l, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("take %s: %v", s.Addr(), err)
	}
	release := time.AfterFunc(2*time.Second, func() { l.Close() })
	defer release.Stop()
	begin := time.Now()
	s.Restart(t)
	if time.Since(begin) < 2*time.Second {
		t.Fatalf("Restart served after %v, before the port was free", time.Since(begin))
	}
	if !imok(s.Addr()) {
		t.Fatal("no imok after Restart")
	}
}
