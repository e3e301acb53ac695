package tiered

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/mmap"
)

func init() {
	engine.Register("tiered", func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
		return Open(ctx, dir, opts)
	})
}

var (
	_ engine.Engine = (*Engine)(nil)
	_ engine.Log    = (*Log)(nil)
	_ engine.Sizer  = (*Log)(nil)
)

// Settings keys (engine.Options.Settings) the engine reads; any other
// strata.tiered.* key is an error.
const (
	// SettingColdDir is the directory of the cold tier. Default: "cold"
	// in the engine's directory; a relative path is taken from there.
	SettingColdDir = "strata.tiered.cold.dir"
	// SettingFrameCacheBytes bounds the decompressed frames kept in
	// memory, for the whole engine. Default 64 MiB; 0 keeps none.
	SettingFrameCacheBytes = "strata.tiered.frame.cache.bytes"
	// SettingFrameBytes is the uncompressed size a cold frame is cut at
	// (whole batches; a larger batch sits alone in its frame). Default
	// 1 MiB.
	SettingFrameBytes = "strata.tiered.frame.bytes"
	// SettingUploadIntervalMs is how often the background uploader looks
	// for sealed segments the local retention lets go. Default 1000; 0
	// turns it off (Settle still uploads).
	SettingUploadIntervalMs = "strata.tiered.upload.interval.ms"
)

// Defaults of the settings.
const (
	DefaultFrameCacheBytes = 64 << 20
	DefaultFrameBytes      = 1 << 20
	DefaultUploadInterval  = time.Second
)

// settings are the parsed strata.tiered.* keys.
type settings struct {
	coldDir        string
	cacheBytes     int64
	frameBytes     int
	uploadInterval time.Duration
}

// parseSettings reads the strata.tiered.* keys of m, leaving keys of other
// engines alone.
func parseSettings(m map[string]string, dir string) (settings, error) {
	s := settings{
		coldDir:        filepath.Join(dir, "cold"),
		cacheBytes:     DefaultFrameCacheBytes,
		frameBytes:     DefaultFrameBytes,
		uploadInterval: DefaultUploadInterval,
	}
	bad := func(k, v, want string) error {
		return fmt.Errorf("tiered: %w: %s=%q: must be %s", engine.ErrInvalidOptions, k, v, want)
	}
	for k, v := range m {
		if !strings.HasPrefix(k, "strata.tiered.") {
			continue
		}
		switch k {
		case SettingColdDir:
			if v == "" {
				return s, bad(k, v, "a directory")
			}
			s.coldDir = v
			if !filepath.IsAbs(v) {
				s.coldDir = filepath.Join(dir, v)
			}
		case SettingFrameCacheBytes:
			n, err := parseBytes(v)
			if err != nil || n < 0 {
				return s, bad(k, v, "a size in bytes >= 0 (suffixes KiB, MiB, GiB allowed)")
			}
			s.cacheBytes = n
		case SettingFrameBytes:
			n, err := parseBytes(v)
			if err != nil || n < 1 || n > maxFrameDecoded {
				return s, bad(k, v, fmt.Sprintf("a size in bytes in [1, %d]", maxFrameDecoded))
			}
			s.frameBytes = int(n)
		case SettingUploadIntervalMs:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || n > int64(time.Duration(1<<63-1)/time.Millisecond) {
				return s, bad(k, v, "milliseconds >= 0")
			}
			s.uploadInterval = time.Duration(n) * time.Millisecond
		default:
			return s, fmt.Errorf("tiered: %w: unknown setting %s", engine.ErrInvalidOptions, k)
		}
	}
	return s, nil
}

// parseBytes parses a byte count with an optional KiB/MiB/GiB suffix.
func parseBytes(v string) (int64, error) {
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mul = s, u.mul
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, err
	}
	if n > (1<<63-1)/mul || n < -(1<<63-1)/mul {
		return 0, errors.New("out of range")
	}
	return n * mul, nil
}

// Lock order, outermost first:
//
//	Engine.mu        the set of open logs, the closed flag
//	Log.opMu         serialises Truncate, DeleteBefore, upload commits and Close: the manifest's writer
//	the hot mmap.Log's locks (engines/mmap)
//	Engine.cache.mu  the frame cache
//
// Append goes to the hot log without opMu (the broker serialises it with
// Truncate and DeleteBefore); uploads compress and store outside opMu and
// take it only to commit.

// Engine is the tiered engine: an engines/mmap engine in the same directory
// holds the hot segments, and sealed segments move to a ColdStore as
// zstd-compressed objects (see the package documentation).
type Engine struct {
	dir  string
	opts engine.Options
	set  settings
	log  *slog.Logger

	hot   *mmap.Engine
	cold  ColdStore
	cache *frameCache

	mu     sync.Mutex
	logs   map[engine.TopicPartition]*Log
	closed bool

	stop chan struct{}
	done chan struct{}

	// hook, if set (tests), runs at each step of an upload; an error
	// aborts the upload there as a crash would, leaving its files.
	hook func(step uploadStep) error
}

// Open opens (creating if needed) the tiered engine whose state lives
// under dir. It fills defaults into opts and validates them, as
// engine.Open does.
func Open(ctx context.Context, dir string, opts engine.Options) (*Engine, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("tiered: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("tiered: %w", err)
	}
	set, err := parseSettings(opts.Settings, abs)
	if err != nil {
		return nil, err
	}
	cold, err := NewLocalDir(opts.FS, set.coldDir)
	if err != nil {
		return nil, err
	}
	hot, err := mmap.Open(ctx, abs, opts)
	if err != nil {
		return nil, fmt.Errorf("tiered: hot tier: %w", err)
	}
	e := &Engine{
		dir:   abs,
		opts:  opts,
		set:   set,
		log:   opts.Logger.With("engine", "tiered", "dir", abs),
		hot:   hot,
		cold:  cold,
		cache: newFrameCache(set.cacheBytes),
		logs:  map[engine.TopicPartition]*Log{},
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	if err := e.removeDeletedLogs(ctx); err != nil {
		hot.Close()
		return nil, err
	}
	go e.uploadLoop()
	return e, nil
}

// removeDeletedLogs deletes the cold objects of logs that no longer exist:
// a DeleteLog that a crash interrupted after the hot log was gone.
func (e *Engine) removeDeletedLogs(ctx context.Context) error {
	objs, err := e.cold.List(ctx, "")
	if err != nil {
		return err
	}
	tps, err := e.hot.Logs(ctx)
	if err != nil {
		return fmt.Errorf("tiered: %w", err)
	}
	live := map[string]bool{}
	for _, tp := range tps {
		live[tp.String()] = true
	}
	for _, o := range objs {
		prefix, _, _ := strings.Cut(o.Name, "/")
		if !live[prefix] {
			if err := e.cold.Delete(ctx, o.Name); err != nil {
				e.log.Warn("removing a cold object of a deleted log", "object", o.Name, "err", err)
			}
		}
	}
	return nil
}

// OpenLog implements engine.Engine.
func (e *Engine) OpenLog(ctx context.Context, tp engine.TopicPartition, opts engine.LogOptions) (engine.Log, error) {
	opts = opts.WithDefaults(e.opts.Log)
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, fmt.Errorf("tiered: open %s: %w", tp, engine.ErrClosed)
	}
	if _, ok := e.logs[tp]; ok {
		e.mu.Unlock()
		return nil, fmt.Errorf("tiered: open %s: %w", tp, engine.ErrLogOpen)
	}
	l := &Log{e: e, tp: tp, opts: opts, logger: e.log.With("topic", tp.Topic, "partition", tp.Partition)}
	l.opMu.Lock()
	defer l.opMu.Unlock()
	e.logs[tp] = l
	e.mu.Unlock()

	hl, err := e.hot.OpenLog(ctx, tp, opts)
	if err == nil {
		l.hot = hl.(*mmap.Log)
		if err = l.recover(ctx); err != nil {
			l.hot.Close()
		}
	}
	if err != nil {
		l.closed.Store(true)
		e.forget(l)
		return nil, fmt.Errorf("tiered: open %s: %w", tp, err)
	}
	l.ready.Store(true)
	return l, nil
}

func (e *Engine) forget(l *Log) {
	e.mu.Lock()
	if e.logs[l.tp] == l {
		delete(e.logs, l.tp)
	}
	e.mu.Unlock()
}

// Logs implements engine.Engine: the hot tier lists every log.
func (e *Engine) Logs(ctx context.Context) ([]engine.TopicPartition, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("tiered: logs: %w", engine.ErrClosed)
	}
	return e.hot.Logs(ctx)
}

// DeleteLog implements engine.Engine. The hot log (with the manifest in its
// directory) goes first, atomically; then the cold objects, which Open
// removes if a crash comes between.
func (e *Engine) DeleteLog(ctx context.Context, tp engine.TopicPartition) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return fmt.Errorf("tiered: delete %s: %w", tp, engine.ErrClosed)
	}
	l := e.logs[tp]
	delete(e.logs, tp)
	e.mu.Unlock()
	if l != nil {
		l.opMu.Lock()
		l.closed.Store(true)
		l.opMu.Unlock()
	}
	if err := e.hot.DeleteLog(ctx, tp); err != nil {
		return fmt.Errorf("tiered: delete %s: %w", tp, err)
	}
	objs, err := e.cold.List(ctx, tp.String()+"/")
	if err != nil {
		return fmt.Errorf("tiered: delete %s: %w", tp, err)
	}
	for _, o := range objs {
		if err := e.cold.Delete(ctx, o.Name); err != nil {
			return fmt.Errorf("tiered: delete %s: %w", tp, err)
		}
		e.cache.dropObject(o.Name)
	}
	return nil
}

// Close implements engine.Engine: it stops the uploader, closes every open
// log and the hot tier.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	logs := make([]*Log, 0, len(e.logs))
	for _, l := range e.logs {
		logs = append(logs, l)
	}
	e.mu.Unlock()
	close(e.stop)
	<-e.done
	var errs []error
	for _, l := range logs {
		errs = append(errs, l.close())
	}
	e.mu.Lock()
	clear(e.logs)
	e.mu.Unlock()
	errs = append(errs, e.hot.Close())
	return errors.Join(errs...)
}

func (e *Engine) snapshot() []*Log {
	e.mu.Lock()
	defer e.mu.Unlock()
	logs := make([]*Log, 0, len(e.logs))
	for _, l := range e.logs {
		if l.ready.Load() {
			logs = append(logs, l)
		}
	}
	return logs
}

// uploadLoop is the background uploader: every upload interval it moves
// the sealed segments each open log's local retention lets go.
func (e *Engine) uploadLoop() {
	defer close(e.done)
	if e.set.uploadInterval <= 0 {
		<-e.stop
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(e.set.uploadInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		for _, l := range e.snapshot() {
			if ctx.Err() != nil {
				return
			}
			switch err := l.settle(ctx, false); {
			case err == nil || errors.Is(err, engine.ErrClosed) || ctx.Err() != nil:
			case errors.Is(err, errStale):
				// Another move (Settle) or a truncation took the segment
				// first: nothing is wrong, the next round looks again.
				l.logger.Debug("moving sealed segments to the cold tier", "err", err)
			default:
				l.logger.Warn("moving sealed segments to the cold tier", "err", err)
			}
		}
	}
}

// Settle moves every sealed segment of l that its local retention lets go
// to the cold tier now, and drops their hot copies: with LocalRetentionMs
// or LocalRetentionBytes 0 (the engine's default), every sealed segment.
// It syncs the log first, so that segments sealed by a roll count. l must
// be a log of the tiered engine.
func Settle(ctx context.Context, l engine.Log) error {
	tl, ok := l.(*Log)
	if !ok {
		return fmt.Errorf("tiered: Settle of a %T, not a tiered log", l)
	}
	if err := tl.hot.Sync(ctx); err != nil {
		return err
	}
	return tl.settle(ctx, true)
}

// ColdBytes returns the bytes of the cold objects under dir's cold tier:
// dir is an engine directory with the default cold directory, or a cold
// directory itself.
func ColdBytes(dir string) (int64, error) {
	root := filepath.Join(dir, "cold")
	if info, err := os.Stat(root); err != nil || !info.IsDir() {
		root = dir
	}
	var n int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".cold") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n += info.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("tiered: cold bytes of %s: %w", dir, err)
	}
	return n, nil
}
