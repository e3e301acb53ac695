package plugins

import (
	"context"
	"fmt"
	"strings"

	"github.com/strata-broker/strata/engine"
)

// Scheme is the engine-name scheme of plugins, registered with
// engine.RegisterScheme when this package is linked in:
// engine.Open(ctx, "plugin:<ref>", dir, opts) runs the program ref names
// and opens its engine, as Open does. ref is a program's path (it has a
// '/') or the name of a plugin declared in opts.Settings by
// strata.plugins.<name>.path.
const Scheme = "plugin"

func init() { engine.RegisterScheme(Scheme, openScheme) }

// PathSetting is the setting that declares the program of plugin name.
func PathSetting(name string) string { return "strata.plugins." + name + ".path" }

// Program returns the program the ref of "plugin:<ref>" names, given the
// engine's settings.
func Program(ref string, settings map[string]string) (string, error) {
	if strings.Contains(ref, "/") {
		return ref, nil
	}
	path := strings.TrimSpace(settings[PathSetting(ref)])
	if path == "" {
		return "", fmt.Errorf("%w: plugin %q is not declared (%s is not set)", engine.ErrUnknownEngine, ref, PathSetting(ref))
	}
	return path, nil
}

func openScheme(ctx context.Context, ref, dir string, opts engine.Options) (engine.Engine, error) {
	path, err := Program(ref, opts.Settings)
	if err != nil {
		return nil, err
	}
	return Open(ctx, path, dir, opts)
}
