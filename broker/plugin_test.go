package broker

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/config"
	_ "github.com/strata-broker/strata/plugins" // the plugin: engine scheme
)

// builtinPlugin is the engine name of examples/builtin (mmap served out of
// process) as declarePlugin declares it.
const builtinPlugin = config.PluginScheme + "builtin"

var (
	builtinOnce sync.Once
	builtinDir  string
	builtinBin  string
	builtinErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if builtinDir != "" {
		os.RemoveAll(builtinDir)
	}
	os.Exit(code)
}

// declarePlugin declares examples/builtin, built once per test binary, as
// the plugin named builtin in c.
func declarePlugin(t testing.TB, c *config.Config) {
	t.Helper()
	builtinOnce.Do(func() {
		builtinDir, builtinErr = os.MkdirTemp("", "strata-broker-test-")
		if builtinErr != nil {
			return
		}
		builtinBin = filepath.Join(builtinDir, "builtin")
		out, err := exec.Command("go", "build", "-o", builtinBin, "github.com/strata-broker/strata/plugins/examples/builtin").CombinedOutput()
		if err != nil {
			builtinErr = fmt.Errorf("building examples/builtin: %v\n%s", err, out)
		}
	})
	if builtinErr != nil {
		t.Fatal(builtinErr)
	}
	if c.Engine == nil {
		c.Engine = map[string]string{}
	}
	c.Engine[config.PluginPathKey("builtin")] = builtinBin
}

// TestPluginTopicConfig: a topic may name a declared plugin, and never a
// program or an undeclared plugin; the plugin's state lives in
// plugin-<name> beside the built-in engines'.
func TestPluginTopicConfig(t *testing.T) {
	tb := startBroker(t, func(c *config.Config) { declarePlugin(t, c) })
	cl := tb.client()
	for _, tc := range []struct {
		engine string
		code   int16
	}{
		{"plugin:builtin", 0},
		{"plugin:nope", kerr.InvalidConfig.Code},
		{"plugin:" + builtinBin, kerr.InvalidConfig.Code},
		{"plugin:/bin/sh", kerr.InvalidConfig.Code},
		{"plugin:../builtin", kerr.InvalidConfig.Code},
		{"plugin:", kerr.InvalidConfig.Code},
	} {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = "t-" + strings.NewReplacer("/", "", ":", "", ".", "").Replace(tc.engine)
		rt.NumPartitions, rt.ReplicationFactor = 2, 1
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = "strata.engine", kmsg.StringPtr(tc.engine)
		rt.Configs = append(rt.Configs, cfg)
		req.Topics = append(req.Topics, rt)
		resp := tb.request(cl, req).(*kmsg.CreateTopicsResponse)
		if got := resp.Topics[0]; got.ErrorCode != tc.code {
			t.Errorf("strata.engine=%s: error %d (%v), want %d", tc.engine, got.ErrorCode, got.ErrorMessage, tc.code)
		} else if tc.code != 0 && (got.ErrorMessage == nil || !strings.Contains(*got.ErrorMessage, "strata.engine")) {
			t.Errorf("strata.engine=%s: message %v does not name the key", tc.engine, got.ErrorMessage)
		}
	}
	// The plugin's topic is served; its partitions live in plugin-builtin.
	p := tb.client()
	sent := produceAcked(t, p, "t-pluginbuiltin", 2, 100, "plugin")
	if len(sent) != 100 {
		t.Fatalf("%d of 100 records acked", len(sent))
	}
	checkConsumed(t, consumeAll(t, tb, "t-pluginbuiltin", len(sent)), sent, nil)
	if _, err := os.Stat(filepath.Join(tb.cfg.LogDirs[0], "plugin-builtin")); err != nil {
		t.Errorf("plugin state dir: %v", err)
	}
}
