// Package e2e runs the strata binary as a process and talks to it with real
// Kafka clients: kafka-python and confluent-kafka (librdkafka) from Python
// scripts in testdata/, kcat, franz-go, and raw TCP for bad input.
//
// TestMain builds the binary once (with -race when the tests run under the
// race detector, so a data race in the broker fails its clean exit). Each
// test starts its own broker on 127.0.0.1 port 0 with its own log dirs and
// learns the bound address from the broker's "serving" log line.
//
// The clients come from Debian packages (python3-kafka, kcat,
// python3-confluent-kafka); `make test` installs them. A missing client is
// a test failure, not a skip.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// strataBin is the binary TestMain built; builtinBin is the example
// plugin serving the built-in engines (plugins/examples/builtin).
var strataBin, builtinBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strata-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	strataBin = filepath.Join(dir, "strata")
	builtinBin = filepath.Join(dir, "builtin")
	for _, b := range []struct{ out, pkg string }{
		{strataBin, "github.com/strata-broker/strata/cmd/strata"},
		{builtinBin, "github.com/strata-broker/strata/plugins/examples/builtin"},
	} {
		args := []string{"build", "-o", b.out}
		if raceEnabled {
			args = append(args, "-race")
		}
		build := exec.Command("go", append(args, b.pkg)...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n", b.pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// logBuffer collects the broker's stderr; it is safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// broker is one running strata serve process.
type broker struct {
	t    *testing.T
	cmd  *exec.Cmd
	Addr string     // host:port the broker is serving on
	Log  *logBuffer // everything it wrote to stderr
	done chan struct{}
	err  error // cmd.Wait's result, once done is closed
	// paused is set between Pause and Resume (test goroutine only).
	paused bool
}

// startBroker runs `strata serve` on 127.0.0.1 port 0 with log.dirs=dir,
// the environment env (added to ours) and the given --override key=value
// pairs, and returns once it logs the address it serves on. The broker is
// killed when the test ends if it still runs.
func startBroker(t *testing.T, dir string, env []string, overrides ...string) *broker {
	t.Helper()
	args := []string{"serve",
		"--override", "listeners=PLAINTEXT://127.0.0.1:0",
		"--override", "log.dirs=" + dir}
	for _, o := range overrides {
		args = append(args, "--override", o)
	}
	cmd := exec.Command(strataBin, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{t: t, cmd: cmd, Log: &logBuffer{}, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// Read stderr line by line into Log, handing the serving address over
	// once it appears; cmd.Wait only after stderr is drained.
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			b.Log.Write([]byte(line + "\n"))
			if !sent && strings.Contains(line, "msg=serving ") {
				if a := logField(line, "addr"); a != "" {
					addrc <- a
					sent = true
				}
			}
		}
		io.Copy(io.Discard, stderr)
		b.err = cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		if b.Running() {
			cmd.Process.Kill()
			<-b.done
		}
		if t.Failed() {
			t.Logf("broker log (%s):\n%s", dir, tail(b.Log.String(), 80))
		}
	})

	select {
	case b.Addr = <-addrc:
		return b
	case <-b.done:
		t.Fatalf("strata serve exited before serving: %v\n%s", b.err, b.Log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("strata serve did not log its address within 30s\n%s", b.Log.String())
	}
	return nil
}

// logField returns the value of key=value in a slog text line.
func logField(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// Running reports whether the process has not exited.
func (b *broker) Running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and expects a clean exit (status 0) within 30s.
func (b *broker) Stop() {
	b.t.Helper()
	if !b.Running() {
		b.t.Fatalf("broker already exited: %v", b.err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		b.t.Fatal(err)
	}
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		b.t.Fatal("broker did not exit within 30s of SIGTERM")
	}
	if b.err != nil {
		b.t.Fatalf("broker exit after SIGTERM: %v, want status 0", b.err)
	}
	if !strings.Contains(b.Log.String(), `msg="shut down"`) {
		b.t.Errorf("no shutdown log line")
	}
}

// Pause stops the process with SIGSTOP: it keeps its sockets and its
// ZooKeeper session until that times out, but answers nothing. It is
// resumed when the test ends if Resume was not called.
func (b *broker) Pause() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		b.t.Fatal(err)
	}
	b.paused = true
	b.t.Cleanup(func() {
		if b.paused {
			b.cmd.Process.Signal(syscall.SIGCONT)
		}
	})
}

// Resume continues a paused process with SIGCONT.
func (b *broker) Resume() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		b.t.Fatal(err)
	}
	b.paused = false
}

// Kill sends SIGKILL and waits for the process to be gone.
func (b *broker) Kill() {
	b.t.Helper()
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		b.t.Fatal(err)
	}
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.t.Fatal("broker still running 10s after SIGKILL")
	}
	var ee *exec.ExitError
	if !errors.As(b.err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		b.t.Fatalf("broker exit after SIGKILL: %v", b.err)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// runTool runs a client command with a deadline and returns its stdout and
// stderr; it fails the test if the command fails or times out.
func runTool(t *testing.T, timeout time.Duration, stdin []byte, name string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	stdout, stderr, err := runToolErr(timeout, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, tail(string(stdout), 40), tail(string(stderr), 40))
	}
	return stdout, stderr
}

// runToolErr is runTool returning the error instead.
func runToolErr(timeout time.Duration, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v (%v)", timeout, err)
	}
	return out.Bytes(), errb.Bytes(), err
}

// needTool fails the test unless the program is on PATH.
func needTool(t *testing.T, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (Debian package %s; `make test` installs it): %v", name, debianPackage, err)
	}
	return p
}

// python returns a Python 3 interpreter that can import module: Debian's
// /usr/bin/python3 first (where python3-kafka and python3-confluent-kafka
// install), then python3 on PATH.
func python(t *testing.T, module, debianPackage string) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if _, _, err := runToolErr(20*time.Second, nil, p, "-c", "import "+module); err == nil {
			return p
		}
	}
	t.Fatalf("no python3 can import %s (Debian package %s; `make test` installs it)", module, debianPackage)
	return ""
}
