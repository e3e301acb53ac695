//go:build linux

// Package zktest runs a real ZooKeeper server for tests: Debian's zookeeper
// package (3.8, /usr/share/java/zookeeper.jar) started as a standalone
// server by org.apache.zookeeper.server.ZooKeeperServerMain.
//
// [Start] gives each server its own free port on 127.0.0.1 and its own
// directory under t.TempDir, holding:
//
//	zoo.cfg          the configuration (tickTime 200 ms, sessions of 400 ms to 60 s)
//	zookeeper.log    the JVM's stdout and stderr, appended to on every start
//	data/            ZooKeeper's dataDir (snapshots and transaction logs)
//
// Start returns once the server answers the ruok four-letter word with
// imok and its conf names this server's data directory, so a test never
// talks to a stranger that took the port. The server is stopped by
// t.Cleanup, and when the test has failed the log's tail goes to t.Log.
//
// [Server.Stop], [Server.Kill] and [Server.Restart] exercise a client's
// reconnect and session handling: Restart starts the server again on the
// same port and data directory, so znodes survive and a client's session
// survives when the server is back within its timeout.
//
// The JVM runs in its own process group and the kernel SIGKILLs it when the
// test process dies (Pdeathsig), so a crashed or killed test leaves no
// ZooKeeper behind. That needs Linux, hence the build constraint.
//
// A missing java or ZooKeeper jar fails the test rather than skipping it:
// `make test` installs Debian's zookeeper package, and a skipped
// coordination test would pass CI while testing nothing.
package zktest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Session timeouts the server grants, from zoo.cfg. ZooKeeper clamps a
// client's requested timeout into [MinSessionTimeout, MaxSessionTimeout].
// TickTime is small so that session expiry tests take seconds.
const (
	TickTime          = 200 * time.Millisecond
	MinSessionTimeout = 400 * time.Millisecond
	MaxSessionTimeout = 60 * time.Second
)

// Variables rather than constants so that tests can point them at nothing.
var (
	// javaPath is looked up in PATH; the zookeeper package depends on
	// default-jre, which puts it at /usr/bin/java.
	javaPath = "java"
	// jarPath is Debian's ZooKeeper jar; its manifest Class-Path names the
	// dependency jars, so it is the whole class path.
	jarPath = "/usr/share/java/zookeeper.jar"
	// logBindingPath gives ZooKeeper's slf4j a backend that writes to
	// stderr, so the log says why a server failed. Without it (the jar's
	// Class-Path names none) slf4j logs nothing; it is optional. Debian's
	// libslf4j-java ships it, which the zookeeper package pulls in.
	logBindingPath = "/usr/share/java/slf4j-simple.jar"
)

const (
	// startTimeout bounds one Start or Restart, retries included. The JVM
	// starts in well under a second on an idle machine; the margin is for a
	// loaded CI machine running the race detector.
	startTimeout = 60 * time.Second
	// startAttempts bounds how often Start picks a new port because the
	// server exited before serving (another process took the port).
	startAttempts = 5
	// stopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	stopTimeout  = 10 * time.Second
	pollInterval = 50 * time.Millisecond
	// logTailBytes is how much of the log a failed test prints.
	logTailBytes = 8 << 10
)

// errExited means the server exited before it served, which is what a
// failed bind looks like from outside; Start retries on a new port.
var errExited = errors.New("zktest: ZooKeeper exited before serving")

// Server is one standalone ZooKeeper server started by [Start]. Its methods
// are safe for concurrent use, except that Restart must not run alongside
// another Restart.
type Server struct {
	java string
	dir  string // t.TempDir: zoo.cfg, zookeeper.log, data/
	port int    // fixed once Start returns

	mu     sync.Mutex
	cmd    *exec.Cmd     // the latest JVM, nil before the first start
	exited chan struct{} // closed once cmd has exited and been reaped
}

// Start starts a ZooKeeper server on a free port of 127.0.0.1 with a data
// directory under t.TempDir, waits until it serves, and registers
// t.Cleanup to stop it. It fails the test (never skips it) if java or the
// ZooKeeper jar is missing or the server does not serve within a minute.
func Start(t testing.TB) *Server {
	t.Helper()
	java, err := exec.LookPath(javaPath)
	if err != nil {
		t.Fatalf("zktest: no java to run ZooKeeper (%v); `make test` installs Debian's zookeeper package, which brings it", err)
	}
	if _, err := os.Stat(jarPath); err != nil {
		t.Fatalf("zktest: no ZooKeeper jar (%v); `make test` installs Debian's zookeeper package", err)
	}
	s := &Server{java: java, dir: t.TempDir()}
	if err := os.Mkdir(s.dataDir(), 0o755); err != nil {
		t.Fatalf("zktest: %v", err)
	}
	// Registered before the first start, so a start that fails still has
	// its JVM stopped and its log shown. It runs before t.TempDir's
	// removal, which was registered earlier.
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("zktest: tail of %s:\n%s", s.logPath(), s.logTail())
		}
	})

	begin := time.Now()
	deadline := begin.Add(startTimeout)
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("zktest: pick a port: %v", err)
		}
		s.port = port
		err = s.start(deadline)
		if err == nil {
			t.Logf("zktest: ZooKeeper serving on %s after %v (attempt %d)", s.Addr(), time.Since(begin).Round(time.Millisecond), attempt)
			return s
		}
		if !errors.Is(err, errExited) || attempt == startAttempts {
			t.Fatalf("zktest: start ZooKeeper (attempt %d): %v", attempt, err)
		}
	}
}

// Addr returns the client address, "127.0.0.1:port". It does not change
// across Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Connect returns the connection string for a broker's zookeeper.connect:
// the one server's address, without a chroot.
func (s *Server) Connect() string { return s.Addr() }

// Running reports whether the server's JVM is alive. It is false after
// Stop or Kill, and also when the JVM died by itself.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runningLocked()
}

// Stop stops the server with SIGTERM, as an operator would, and returns
// once the JVM has exited: after 10 s it sends SIGKILL. Stopping a server
// that is not running does nothing.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills the server with SIGKILL, as a crash would, and returns once
// the JVM has exited. Committed transactions survive: ZooKeeper writes
// them to its log before it answers. Killing a server that is not running
// does nothing.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Restart stops the server if it is running and starts it again on the
// same port and data directory, so znodes persist and a client reconnects
// by itself; a session survives if the server is back within its timeout.
// Restart retries while the port is taken (a client's ephemeral port may
// have landed on it while the server was down) and fails the test if the
// server does not serve within a minute.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	begin := time.Now()
	deadline := begin.Add(startTimeout)
	for attempt := 1; ; attempt++ {
		// A JVM that fails to bind takes seconds to exit; checking the
		// port first is quicker. The check can still race, hence the retry.
		for !portFree(s.Addr()) && time.Now().Before(deadline) {
			time.Sleep(pollInterval)
		}
		err := s.start(deadline)
		if err == nil {
			t.Logf("zktest: ZooKeeper serving again on %s after %v (attempt %d)", s.Addr(), time.Since(begin).Round(time.Millisecond), attempt)
			return
		}
		if !errors.Is(err, errExited) || time.Now().After(deadline) {
			t.Fatalf("zktest: restart ZooKeeper (attempt %d): %v; log: %s", attempt, err, s.logPath())
		}
	}
}

// start starts one JVM on s.port and waits until it serves or deadline.
// It returns an error wrapping errExited if the JVM exited first; on any
// error no JVM is left running.
func (s *Server) start(deadline time.Time) error {
	if err := os.WriteFile(s.cfgPath(), []byte(s.config()), 0o644); err != nil {
		return fmt.Errorf("zktest: write config: %w", err)
	}
	logf, err := os.OpenFile(s.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("zktest: open log: %w", err)
	}
	fmt.Fprintf(logf, "zktest: %s starting ZooKeeper on %s\n", time.Now().UTC().Format(time.RFC3339Nano), s.Addr())

	classPath := jarPath
	if _, err := os.Stat(logBindingPath); err == nil {
		classPath += ":" + logBindingPath
	}
	cmd := exec.Command(s.java,
		// A small, quick-starting JVM: tests hold a few hundred znodes.
		"-Xms32m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData",
		"-Djava.net.preferIPv4Stack=true",
		"-Dzookeeper.jmx.log4j.disable=true",
		"-Dorg.slf4j.simpleLogger.showDateTime=true",
		"-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
		"-cp", classPath,
		"org.apache.zookeeper.server.ZooKeeperServerMain", s.cfgPath())
	cmd.Dir = s.dir
	// An *os.File is handed to the child as is: no copying goroutine that
	// could outlive the test.
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = startOnForkThread(cmd)
	logf.Close() // the child has its own descriptor
	if err != nil {
		return fmt.Errorf("zktest: start %s: %w", s.java, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() // the exit status is read from cmd.ProcessState
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()

	for {
		select {
		case <-exited:
			return fmt.Errorf("%w on %s: %v", errExited, s.Addr(), cmd.ProcessState)
		default:
		}
		if s.serving() {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("zktest: ZooKeeper on %s not serving within %v", s.Addr(), startTimeout)
		}
		select {
		case <-exited:
		case <-time.After(pollInterval):
		}
	}
}

// serving reports whether this server, and not another process on its
// port, serves requests. ruok answers imok as soon as the port listens,
// before the database is loaded; conf answers only once the server runs,
// and it names the data directory, which is this server's own.
func (s *Server) serving() bool {
	return probe(s.Addr(), "ruok", func(answer string) bool { return answer == "imok" }) &&
		probe(s.Addr(), "conf", func(answer string) bool {
			return strings.Contains(answer, "dataDir="+s.dataDir()+string(filepath.Separator))
		})
}

// signal sends sig to the server's process group and waits for the JVM to
// exit, sending SIGKILL after stopTimeout.
func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.runningLocked() {
		return
	}
	pgid := s.cmd.Process.Pid // Setpgid: the group is named after the JVM
	_ = syscall.Kill(-pgid, sig)
	if sig != syscall.SIGKILL {
		select {
		case <-s.exited:
			return
		case <-time.After(stopTimeout):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	<-s.exited // SIGKILL cannot be caught; the wait is the kernel's
}

func (s *Server) runningLocked() bool {
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

func (s *Server) config() string {
	return fmt.Sprintf(`# Written by zktest for one test's server.
tickTime=%d
minSessionTimeout=%d
maxSessionTimeout=%d
dataDir=%s
clientPortAddress=127.0.0.1
clientPort=%d
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,conf
# Transactions still reach the OS before ZooKeeper answers, so they survive
# Kill; only a machine crash loses them, which a test does not need.
forceSync=no
`, TickTime.Milliseconds(), MinSessionTimeout.Milliseconds(), MaxSessionTimeout.Milliseconds(), s.dataDir(), s.port)
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *Server) cfgPath() string { return filepath.Join(s.dir, "zoo.cfg") }
func (s *Server) logPath() string { return filepath.Join(s.dir, "zookeeper.log") }

// logTail returns the last logTailBytes of the log, or why it cannot.
func (s *Server) logTail() string {
	f, err := os.Open(s.logPath())
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err.Error()
	}
	start := max(end-logTailBytes, 0)
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
		return err.Error()
	}
	if start > 0 { // drop the partial first line
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	return string(buf)
}

// probe sends one of ZooKeeper's four-letter words and reports whether
// done accepts the answer. It reads until done accepts what has arrived,
// the server closes the connection, or two seconds pass. It does not wait
// for the close once the answer is in: while the server starts, ZooKeeper
// 3.8 can fail to close a four-letter connection (a NullPointerException
// in ServerCnxn.cleanupWriterSocket while its database is still null),
// which would hold every early ruok for the whole deadline.
func probe(addr, cmd string, done func(answer string) bool) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	if conn.SetDeadline(time.Now().Add(2*time.Second)) != nil {
		return false
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		return false
	}
	var answer []byte
	buf := make([]byte, 4<<10)
	for len(answer) < 64<<10 {
		n, err := conn.Read(buf)
		answer = append(answer, buf[:n]...)
		if done(string(answer)) {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// freePort returns a port of 127.0.0.1 that was free a moment ago. Another
// process can take it before ZooKeeper binds it; Start then retries.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether addr can be listened on now.
func portFree(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// forkThread starts every JVM from one OS thread that never exits. The
// kernel sends Pdeathsig when the forking thread exits, not the process,
// and the Go runtime ends a thread whose goroutine exits while locked to
// it (runtime.LockOSThread, common in tests of cgo or namespaces); a JVM
// forked from such a thread would be killed mid-test.
var forkThread struct {
	once sync.Once
	reqs chan func()
}

func startOnForkThread(cmd *exec.Cmd) error {
	forkThread.once.Do(func() {
		forkThread.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for f := range forkThread.reqs {
				f()
			}
		}()
	})
	errc := make(chan error, 1)
	forkThread.reqs <- func() { errc <- cmd.Start() }
	return <-errc
}
