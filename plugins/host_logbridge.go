package plugins

// The host side's log bridge: go-plugin's own log, and the plugin's stderr
// lines it passes on, go to the host's Options.Logger at the level each line
// carries (the plugin writes them with stderrLogger).

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

// hclogOver routes go-plugin's log (and the plugin's stderr, which go-plugin
// logs line by line at the level the plugin gave) to l.
func hclogOver(l *slog.Logger) hclog.Logger {
	level := hclog.Info
	if l.Enabled(context.Background(), slog.LevelDebug) {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       "plugin",
		Level:      level,
		JSONFormat: true,
		Output:     slogWriter{l},
	})
}

// slogWriter takes hclog's JSON lines and logs each with slog.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		w.l.Info(string(bytes.TrimRight(p, "\n")))
		return len(p), nil
	}
	msg, _ := m["@message"].(string)
	var level slog.Level
	switch m["@level"] {
	case "trace", "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	var attrs []slog.Attr
	for k, v := range m {
		switch k {
		case "@message", "@level", "@timestamp", "timestamp":
		case "@module":
			attrs = append(attrs, slog.Any("module", v))
		default:
			attrs = append(attrs, slog.Any(k, v))
		}
	}
	w.l.LogAttrs(context.Background(), level, msg, attrs...)
	return len(p), nil
}
