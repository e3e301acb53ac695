package config

import (
	"reflect"
	"testing"
)

func TestPlugins(t *testing.T) {
	// A declared plugin, selected by name.
	c := mustLoad(t, "strata.plugins.ext.path=/opt/ext/engine\nlog.engine=plugin:ext\n", nil, nil)
	if c.LogEngine != "plugin:ext" || !reflect.DeepEqual(c.PluginNames(), []string{"ext"}) {
		t.Errorf("log.engine %q, plugins %v", c.LogEngine, c.PluginNames())
	}
	// log.engine naming a program declares it under its file name.
	c = mustLoad(t, "log.engine=plugin:/opt/x/my.engine\nstrata.plugins.other.path=/opt/other\n", nil, nil)
	if c.LogEngine != "plugin:my-engine" || c.Engine[PluginPathKey("my-engine")] != "/opt/x/my.engine" {
		t.Errorf("log.engine %q, engine settings %v", c.LogEngine, c.Engine)
	}
	if got := c.PluginNames(); !reflect.DeepEqual(got, []string{"my-engine", "other"}) {
		t.Errorf("plugins %v", got)
	}
	if o := c.EngineOptions(); o.Settings[PluginPathKey("other")] != "/opt/other" {
		t.Errorf("engine options lack the plugin declarations: %v", o.Settings)
	}
	// The same program declared twice is fine; another under the name is not.
	mustLoad(t, "log.engine=plugin:/opt/x/eng\nstrata.plugins.eng.path=/opt/x/eng\n", nil, nil)
	_, err := load(t, "log.engine=plugin:/opt/x/eng\nstrata.plugins.eng.path=/opt/y/eng\n", nil, nil)
	wantErr(t, err, "plugin:/opt/x/eng", "/opt/y/eng")
	// From the environment.
	c = mustLoad(t, "", []string{"STRATA_PLUGINS_EXT_PATH=/opt/ext", "KAFKA_LOG_ENGINE=plugin:ext"}, nil)
	if c.LogEngine != "plugin:ext" || c.Engine[PluginPathKey("ext")] != "/opt/ext" {
		t.Errorf("from env: log.engine %q, settings %v", c.LogEngine, c.Engine)
	}
	for _, tc := range []struct {
		line  string
		parts []string
	}{
		{"log.engine=plugin:nope", []string{"plugin:nope", PluginPathKey("nope")}},
		{"strata.plugins.ext.path=", []string{"strata.plugins.ext.path", "path"}},
		{"strata.plugins.ext.pth=/x", []string{"strata.plugins.ext.pth"}},
		{"strata.plugins.a.b.path=/x", []string{"strata.plugins.a.b.path"}},
		{"strata.plugins..path=/x", []string{"strata.plugins..path"}},
	} {
		_, err := load(t, "", nil, []string{tc.line})
		wantErr(t, err, tc.parts...)
	}
}
