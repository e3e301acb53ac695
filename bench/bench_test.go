package bench

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"

	"github.com/strata-broker/strata/engine"

	// engines register themselves; link every built-in one.
	_ "github.com/strata-broker/strata/engines/lsm"
	_ "github.com/strata-broker/strata/engines/mem"
	_ "github.com/strata-broker/strata/engines/mmap"
)

// builtinDir holds the examples/builtin program once builtin has built it;
// TestMain removes it.
var builtinDir string

// builtin builds examples/builtin once per run of the test binary, when the
// first benchmark or test that needs it asks.
var builtin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "strata-bench")
	if err != nil {
		return "", err
	}
	builtinDir = dir
	return BuildBuiltin(dir)
})

func TestMain(m *testing.M) {
	code := m.Run()
	if builtinDir != "" {
		os.RemoveAll(builtinDir)
	}
	os.Exit(code)
}

// builtinProgram returns the built examples/builtin program; a failed
// build fails tb.
func builtinProgram(tb testing.TB) string {
	bin, err := builtin()
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// BenchmarkEngine runs every engine workload over raw, every registered
// engine, and the plugin targets: BenchmarkEngine/<engine>/<op>.
func BenchmarkEngine(b *testing.B) { RunEngines(b, builtinProgram(b)) }

// TestGroupAppender checks that a grouped append lands every batch of every
// group, contiguous and byte for byte, in process and through a plugin, so
// the append-*-x* ops measure what they say.
func TestGroupAppender(t *testing.T) {
	ctx := context.Background()
	for _, tg := range Targets(builtinProgram(t)) {
		if tg.Name != "mem" && tg.Name != "plugin-mem" {
			continue
		}
		t.Run(tg.Name, func(t *testing.T) {
			e, l := tg.open(t, t.TempDir())
			defer discard(t, e, l)
			if _, ok := l.(engine.BatchAppender); tg.Plugin && !ok {
				t.Errorf("%s log is not an engine.BatchAppender", tg.Name)
			}
			const size, n, groups = 1 << 10, 8, 3
			g := newGroupAppender(t, size, n)
			var want []byte
			for range groups {
				if err := g.append(ctx, l); err != nil {
					t.Fatal(err)
				}
				for _, bt := range g.batches {
					want = append(want, bt.Data...)
				}
			}
			if _, end := l.Offsets(); end != g.next || end != groups*n*(g.span+1) {
				t.Fatalf("end offset %d, appender at %d, want %d", end, g.next, groups*n*(g.span+1))
			}
			var got []byte
			for off := int64(0); off < g.next; {
				r, err := l.Read(ctx, off, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				if r.Empty() {
					t.Fatalf("empty read at %d < end %d", off, g.next)
				}
				for _, c := range r.Chunks {
					got = append(got, c...)
				}
				off = r.NextOffset
				r.Release()
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes that differ from the %d appended", len(got), len(want))
			}
		})
	}
}
