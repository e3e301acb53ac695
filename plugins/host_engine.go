package plugins

// The host side's engine client: Open and OpenCommand start a plugin and
// return its Engine, which forwards each engine.Engine call as one call to
// the plugin, under the call timeout (SettingCallTimeout) when the caller's
// context has no deadline.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// SettingCallTimeout (Options.Settings, milliseconds) is the deadline of a
// call to the plugin whose context has none. Default DefaultCallTimeout.
const SettingCallTimeout = "strata.plugin.call.timeout.ms"

// DefaultCallTimeout is the deadline of a call whose context has none.
const DefaultCallTimeout = 30 * time.Second

// Open starts the plugin program at path, checks its handshake, and opens
// its engine with state under dir and opts (Options.Log and Settings travel
// to the plugin; FS, Logger and Now stay in the host, which gives the
// plugin its own). Settings named strata.plugin.* and strata.plugins.*
// configure the host side and are not sent. If the process exits, it is
// started again with backoff (see SettingRestartBackoff) and the open logs
// are opened again in it. The returned engine's Close kills the process.
func Open(ctx context.Context, path, dir string, opts engine.Options) (engine.Engine, error) {
	return OpenCommand(ctx, exec.Command(path), dir, opts)
}

// prepare fills the defaults of opts, validates them and returns the
// per-call timeout they set.
func prepare(opts *engine.Options) (time.Duration, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return 0, err
	}
	return callTimeout(opts.Settings)
}

// OpenCommand is Open for a plugin started by cmd, which may carry
// arguments and environment (examples/builtin takes the engine's name as
// its argument). cmd must not have been started; restarts run copies of
// it.
func OpenCommand(ctx context.Context, cmd *exec.Cmd, dir string, opts engine.Options) (engine.Engine, error) {
	timeout, err := prepare(&opts)
	if err != nil {
		return nil, err
	}
	backoff, err := durationSetting(opts.Settings, SettingRestartBackoff, DefaultRestartBackoff)
	if err != nil {
		return nil, err
	}
	maxBackoff, err := durationSetting(opts.Settings, SettingRestartBackoffMax, DefaultRestartBackoffMax)
	if err != nil {
		return nil, err
	}
	if maxBackoff < backoff {
		return nil, fmt.Errorf("%w: %s must be >= %s", engine.ErrInvalidOptions, SettingRestartBackoffMax, SettingRestartBackoff)
	}
	next := cmd
	start := func(ctx context.Context) (*proc, error) {
		c := next
		if c == nil {
			c = cloneCmd(cmd)
		}
		next = nil
		return startProc(ctx, c, dir, opts, timeout)
	}
	p, err := start(ctx)
	if err != nil {
		return nil, err
	}
	e := newHostEngine(p, timeout, cmd.Path, opts.Logger)
	e.start, e.backoff, e.maxBackoff = start, backoff, maxBackoff
	e.supervised = make(chan struct{})
	go e.supervise()
	return e, nil
}

func callTimeout(settings map[string]string) (time.Duration, error) {
	return durationSetting(settings, SettingCallTimeout, DefaultCallTimeout)
}

// durationSetting reads a setting in milliseconds (an integer >= 1).
func durationSetting(settings map[string]string, key string, def time.Duration) (time.Duration, error) {
	v, ok := settings[key]
	if !ok {
		return def, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 1 || ms > math.MaxInt64/int64(time.Millisecond) {
		return 0, fmt.Errorf("%w: %s=%q: must be an integer >= 1 (milliseconds)", engine.ErrInvalidOptions, key, v)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Engine is an engine served by a plugin process, as the host sees it.
//
// An engine from Open supervises its process: when the process exits, or
// a call finds its connection gone, calls fail with ErrUnavailable while a
// new process is started with backoff; logs opened before are opened
// again in the new process (eagerly after the restart, and lazily by
// their next call if that failed), so their holders keep using them.
type Engine struct {
	timeout time.Duration
	path    string
	log     *slog.Logger

	// start runs the plugin again; nil over the in-process pair, which
	// is never restarted.
	start               func(context.Context) (*proc, error)
	backoff, maxBackoff time.Duration
	kick                chan struct{} // a call found the plugin gone
	supervised          chan struct{} // closed when supervise returns; nil if none
	stopCtx             context.Context
	stop                context.CancelFunc

	mu   sync.Mutex
	cur  *proc // nil while the plugin is down
	logs map[*Log]struct{}
	gen  atomic.Uint64 // cur's gen; 0 while down

	closed    atomic.Bool
	closeOnce sync.Once
}

var _ engine.Engine = (*Engine)(nil)

func newHostEngine(p *proc, timeout time.Duration, path string, log *slog.Logger) *Engine {
	p.gen = 1
	e := &Engine{timeout: timeout, path: path, log: log, cur: p,
		logs: map[*Log]struct{}{}, kick: make(chan struct{}, 1)}
	e.gen.Store(p.gen)
	e.stopCtx, e.stop = context.WithCancel(context.Background())
	return e
}

// Pid returns the process id of the running plugin, or 0 while it is down
// or when it runs in process.
func (e *Engine) Pid() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == nil {
		return 0
	}
	return e.cur.pid
}

// callContext gives ctx the default deadline if it has none.
func (e *Engine) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, e.timeout)
}

func (e *Engine) errClosed() error { return fmt.Errorf("plugins: %w", engine.ErrClosed) }

// OpenLog implements engine.Engine.
func (e *Engine) OpenLog(ctx context.Context, tp engine.TopicPartition, opts engine.LogOptions) (engine.Log, error) {
	p, err := e.proc()
	if err != nil {
		return nil, err
	}
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	resp, err := p.c.OpenLog(ctx, &enginepb.OpenLogRequest{Tp: tpToPB(tp), Opts: logOptionsToPB(opts)})
	if err != nil {
		return nil, e.result(ctx, p, "OpenLog", err)
	}
	l := &Log{e: e, tp: tp, opts: opts, h: resp.GetHandle()}
	l.p.Store(p)
	l.setOffsets(resp.GetStart(), resp.GetEnd())
	e.mu.Lock()
	e.logs[l] = struct{}{}
	e.mu.Unlock()
	if resp.GetSizer() {
		return &sizerLog{l}, nil
	}
	return l, nil
}

// Logs implements engine.Engine.
func (e *Engine) Logs(ctx context.Context) ([]engine.TopicPartition, error) {
	p, err := e.proc()
	if err != nil {
		return nil, err
	}
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	resp, err := p.c.Logs(ctx, &enginepb.Empty{})
	if err != nil {
		return nil, e.result(ctx, p, "Logs", err)
	}
	tps := make([]engine.TopicPartition, len(resp.GetLogs()))
	for i, tp := range resp.GetLogs() {
		tps[i] = tpFromPB(tp)
	}
	return tps, nil
}

// DeleteLog implements engine.Engine. A Log of tp still held is closed
// with it: a restarted plugin must not open it again.
func (e *Engine) DeleteLog(ctx context.Context, tp engine.TopicPartition) error {
	p, err := e.proc()
	if err != nil {
		return err
	}
	e.mu.Lock()
	for l := range e.logs {
		if l.tp == tp {
			l.closed.Store(true)
			delete(e.logs, l)
		}
	}
	e.mu.Unlock()
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	_, err = p.c.DeleteLog(ctx, tpToPB(tp))
	return e.result(ctx, p, "DeleteLog", err)
}

// Close closes the plugin's engine, stops restarting it and kills the
// plugin process. It is idempotent.
func (e *Engine) Close() error {
	err := e.errClosed()
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.stop()
		if e.supervised != nil {
			<-e.supervised
		}
		e.mu.Lock()
		p := e.cur
		e.cur = nil
		e.gen.Store(0)
		e.mu.Unlock()
		if p == nil {
			err = nil
			return
		}
		ctx, cancel := e.callContext(context.Background())
		defer cancel()
		_, cerr := p.c.Close(ctx, &enginepb.Empty{})
		err = fromStatus(ctx, "Close", cerr)
		if errors.Is(err, ErrUnavailable) {
			err = nil // it died on its own; nothing is left to close
		}
		p.kill()
		p.releaseShared()
	})
	if errors.Is(err, engine.ErrClosed) {
		return nil // a second Close
	}
	return err
}

// SetFailWrites makes every later write of the plugin's engine fail (on)
// or reach the storage again (off): a fault-injection hook for tests. The
// plugin fails writes through the engine's own switch if it has one
// (SetFailWrites(bool)) and through the FS it gave the engine.
func (e *Engine) SetFailWrites(ctx context.Context, on bool) error {
	p, err := e.proc()
	if err != nil {
		return err
	}
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	_, err = p.c.SetFailWrites(ctx, &enginepb.SetFailWritesRequest{On: on})
	return e.result(ctx, p, "SetFailWrites", err)
}
