package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// Plugin engines. strata.plugins.<name>.path declares the program of a
// plugin engine, which log.engine and a topic's strata.engine select as
// plugin:<name>. log.engine may also name a program directly,
// plugin:<path>; Load then declares it under the program's file name, so
// every plugin the broker runs has a name (its data lives in
// <log dir>/plugin-<name>), and topics may name only declared plugins.
const (
	// PluginScheme prefixes the engine names of plugins.
	PluginScheme  = "plugin:"
	pluginsPrefix = "strata.plugins."
	pluginPath    = ".path"
)

// PluginPathKey is the key that declares the program of plugin name.
func PluginPathKey(name string) string { return pluginsPrefix + name + pluginPath }

// ValidPluginName reports whether name can name a plugin: letters,
// digits, '-' and '_'.
func ValidPluginName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// PluginNames returns the names of the declared plugins, sorted.
func (c *Config) PluginNames() []string {
	var names []string
	for k := range c.Engine {
		if rest, ok := strings.CutPrefix(k, pluginsPrefix); ok {
			if name, ok := strings.CutSuffix(rest, pluginPath); ok {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// checkPlugins validates the strata.plugins.* keys and turns
// log.engine=plugin:<path> into plugin:<name>, declaring the program.
func checkPlugins(c *Config) error {
	for k, v := range c.Engine {
		rest, ok := strings.CutPrefix(k, pluginsPrefix)
		if !ok {
			continue
		}
		name, ok := strings.CutSuffix(rest, pluginPath)
		if !ok || !ValidPluginName(name) {
			return fmt.Errorf("%w: unknown key %s (plugins are declared as %s, the name of letters, digits, - and _)", ErrInvalidConfig, k, PluginPathKey("<name>"))
		}
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%w: %s: needs the path of the plugin program", ErrInvalidConfig, k)
		}
	}
	ref, ok := strings.CutPrefix(c.LogEngine, PluginScheme)
	if !ok {
		return nil
	}
	if !strings.Contains(ref, "/") {
		if _, declared := c.Engine[PluginPathKey(ref)]; !declared {
			return fmt.Errorf("%w: log.engine=%s: no plugin %q is declared (set %s, or name the program: plugin:/path/to/program)", ErrInvalidConfig, c.LogEngine, ref, PluginPathKey(ref))
		}
		return nil
	}
	name := strings.Map(func(r rune) rune {
		if ValidPluginName(string(r)) {
			return r
		}
		return '-'
	}, filepath.Base(ref))
	key := PluginPathKey(name)
	if prev, ok := c.Engine[key]; ok && prev != ref {
		return fmt.Errorf("%w: log.engine=%s would be plugin %q, but %s=%s declares another program under that name", ErrInvalidConfig, c.LogEngine, name, key, prev)
	}
	c.Engine[key] = ref
	c.LogEngine = PluginScheme + name
	return nil
}
