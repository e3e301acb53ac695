package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// syncBuffer is a bytes.Buffer safe for the broker's logger and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
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

func TestHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "strata serve") {
		t.Fatalf("--help: exit %d, %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"serve", "--help"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "log.dirs") || !strings.Contains(out.String(), "mmap") {
		t.Fatalf("serve --help: exit %d, %q", code, out.String())
	}
	if code := run(context.Background(), nil, nil, &out, &errb); code != exitUsage {
		t.Fatalf("no command: exit %d", code)
	}
}

func TestBadConfigNamesTheKey(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--override", "no.such.key=1"},
		{"serve", "--override", "num.partitions=many"},
		{"serve", "--bogus"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, nil, &out, &errb)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
		want := strings.TrimPrefix(strings.SplitN(args[len(args)-1], "=", 2)[0], "--")
		if !strings.Contains(errb.String(), want) {
			t.Errorf("%v: message %q does not name %s", args, errb.String(), want)
		}
	}
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestServe(t *testing.T) {
	addr := freePort(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--override", "listeners=PLAINTEXT://" + addr, "--override=log.dirs=" + dir},
			[]string{"KAFKA_CREATE_TOPICS=boot:3:1"}, &bytes.Buffer{}, &stderr)
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("boot"), kgo.RetryTimeout(15*time.Second),
		// The broker may not listen yet: retry metadata promptly.
		kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte("hi")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v\n%s", err, stderr.String())
	}
	topics, err := kadm.NewClient(cl).ListTopics(pctx, "boot")
	if err != nil || len(topics["boot"].Partitions) != 3 {
		t.Fatalf("KAFKA_CREATE_TOPICS topic: %v %+v", err, topics)
	}
	cl.Close()

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after its context ended")
	}
	if !strings.Contains(stderr.String(), "shut down") {
		t.Fatalf("no shutdown log:\n%s", stderr.String())
	}
}
