package plugins

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/mem"
)

// Environment of the processes the tests start.
const (
	// builtinEnv holds the path of the built examples/builtin program,
	// so child processes of enginetest's KillChild reuse it.
	builtinEnv = "STRATA_PLUGINS_TEST_BUILTIN"
	// minimalEnv holds the path of the built examples/minimal program.
	minimalEnv = "STRATA_PLUGINS_TEST_MINIMAL"
	// serveEnv makes the test binary a plugin: "mismatch" serves mem
	// with another protocol version, "log" serves mem after logging a
	// line, "hang" serves mem whose OpenLog of topic "hang" never
	// returns.
	serveEnv = "STRATA_PLUGINS_TEST_SERVE"
)

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "mismatch" {
		hs := Handshake
		hs.ProtocolVersion = ProtocolVersion + 1
		serve(func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
			return mem.Open(ctx, dir, opts)
		}, hs)
		os.Exit(0)
	}
	if os.Getenv(serveEnv) == "log" {
		Serve(func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
			opts.Logger.Warn("hello from the plugin", "dir", dir)
			return mem.Open(ctx, dir, opts)
		})
		os.Exit(0)
	}
	if os.Getenv(serveEnv) == "hang" {
		Serve(func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
			e, err := mem.Open(ctx, dir, opts)
			return hangEngine{e}, err
		})
		os.Exit(0)
	}
	var tmp string
	if os.Getenv(builtinEnv) == "" {
		var err error
		tmp, err = os.MkdirTemp("", "strata-plugins-test")
		if err == nil {
			err = build(tmp, "builtin", builtinEnv)
		}
		if err == nil {
			err = build(tmp, "minimal", minimalEnv)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// build compiles examples/name into dir and records its path in env.
func build(dir, name, env string) error {
	bin := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", bin, "./examples/"+name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("building examples/%s: %v\n%s", name, err, out)
	}
	return os.Setenv(env, bin)
}

// hangEngine never answers OpenLog of topic "hang".
type hangEngine struct{ engine.Engine }

func (h hangEngine) OpenLog(ctx context.Context, tp engine.TopicPartition, opts engine.LogOptions) (engine.Log, error) {
	if tp.Topic == "hang" {
		select {} // a hung engine: ignores ctx
	}
	return h.Engine.OpenLog(ctx, tp, opts)
}
