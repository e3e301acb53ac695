package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// SettingCallTimeout (Options.Settings, milliseconds) is the deadline of a
// call to the plugin whose context has none. Default DefaultCallTimeout.
const SettingCallTimeout = "strata.plugin.call.timeout.ms"

// DefaultCallTimeout is the deadline of a call whose context has none.
const DefaultCallTimeout = 30 * time.Second

// appendMessageBytes is where Engine logs split AppendBatches into several
// calls, below gRPC's default 4 MiB message limit.
const appendMessageBytes = 3 << 20

// Settings (Options.Settings, milliseconds) of the restarts of a plugin
// that exited: the first comes SettingRestartBackoff after the exit, and
// each failed or short-lived run doubles the wait, up to
// SettingRestartBackoffMax.
const (
	SettingRestartBackoff    = "strata.plugin.restart.backoff.ms"
	SettingRestartBackoffMax = "strata.plugin.restart.backoff.max.ms"
)

// Defaults of the restart settings.
const (
	DefaultRestartBackoff    = 250 * time.Millisecond
	DefaultRestartBackoffMax = 30 * time.Second
)

// stableRun is how long a restarted plugin must run before the next exit
// waits only SettingRestartBackoff again.
const stableRun = time.Minute

// exitPoll is how often the supervisor checks whether the plugin process
// is still running, when no call has noticed it died.
const exitPoll = 200 * time.Millisecond

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

// hostSettings are the settings prefixes the host keeps to itself.
var hostSettings = []string{"strata.plugin.", "strata.plugins."}

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

// cloneCmd returns an unstarted copy of cmd, for a restart.
func cloneCmd(cmd *exec.Cmd) *exec.Cmd {
	c := exec.Command(cmd.Path, cmd.Args[1:]...)
	c.Args, c.Env, c.Dir = cmd.Args, cmd.Env, cmd.Dir
	c.SysProcAttr = cmd.SysProcAttr
	return c
}

// startProc starts one run of the plugin program and Inits its engine.
func startProc(ctx context.Context, cmd *exec.Cmd, dir string, opts engine.Options, timeout time.Duration) (*proc, error) {
	path := cmd.Path
	setDeathSignal(cmd)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          pluginMap(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     timeout,
		Logger:           hclogOver(opts.Logger),
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageBytes),
			grpc.MaxCallSendMsgSize(maxMessageBytes))},
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		if strings.Contains(strings.ToLower(err.Error()), "incompatible api version") {
			return nil, fmt.Errorf("plugins: starting %s: the plugin speaks another protocol than this host (version %d); rebuild it against this Strata: %w", path, ProtocolVersion, err)
		}
		return nil, fmt.Errorf("plugins: starting %s: %w", path, err)
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugins: %s: %w", path, err)
	}
	p := &proc{c: raw.(enginepb.EngineClient), client: client}
	p.kill = func() { client.Kill(); p.releaseShared() }
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	if err := initEngine(ctx, p.c, dir, opts, timeout); err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugins: %s: %w", path, err)
	}
	return p, nil
}

// initEngine sends the plugin the engine's directory and options.
func initEngine(ctx context.Context, c enginepb.EngineClient, dir string, opts engine.Options, timeout time.Duration) error {
	settings := maps.Clone(opts.Settings)
	maps.DeleteFunc(settings, func(k, _ string) bool {
		return slices.ContainsFunc(hostSettings, func(p string) bool { return strings.HasPrefix(k, p) })
	})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	_, err := c.Init(ctx, &enginepb.InitRequest{Dir: dir, Log: logOptionsToPB(opts.Log), Settings: settings})
	return fromStatus(ctx, "Init", err)
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

// proc is one run of the plugin: its connection and, when Open started
// it, its process.
type proc struct {
	c      enginepb.EngineClient
	client *plugin.Client // nil over the in-process pair
	kill   func()
	pid    int
	gen    uint64 // which run this is, from 1

	// shm is the run's shared region for append batches, set up by the
	// first append (nil if it could not be), and lanes carry the appends
	// whose batches lie there; releaseShared ends both.
	shmOnce sync.Once
	shm     *shmRegion
	lanes   lanes
}

// region returns p's shared region, asking the plugin to map it at the
// first call; nil if either side cannot.
func (p *proc) region(e *Engine) *shmRegion {
	p.shmOnce.Do(func() {
		b, path, f, err := createShared(shmBytes)
		if err != nil {
			e.log.Debug("plugin appends carry their bytes", "plugin", e.path, "err", err)
			return
		}
		defer f.Close()
		ctx, cancel := e.callContext(context.Background())
		defer cancel()
		if _, err := p.c.Share(ctx, &enginepb.ShareRequest{Path: path, Size: int64(len(b))}); err != nil {
			unmapShared(b)
			e.log.Debug("plugin appends carry their bytes", "plugin", e.path, "err", err)
			return
		}
		p.shm = newShmRegion(b, unmapShared)
	})
	return p.shm
}

// releaseShared unmaps p's shared region once no append uses it, and keeps
// p from setting one up after.
func (p *proc) releaseShared() {
	p.shmOnce.Do(func() {})
	p.lanes.close()
	if p.shm != nil {
		p.shm.close()
	}
}

// exited reports whether the process has exited.
func (p *proc) exited() bool { return p.client != nil && p.client.Exited() }

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

// proc returns the running plugin.
func (e *Engine) proc() (*proc, error) {
	if e.closed.Load() {
		return nil, e.errClosed()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == nil {
		return nil, fmt.Errorf("%w: %s is down and being restarted", ErrUnavailable, e.path)
	}
	return e.cur, nil
}

// result turns the error of a call to p into the error the host returns,
// and hands p to the supervisor if the call found it gone.
func (e *Engine) result(ctx context.Context, p *proc, method string, err error) error {
	err = fromStatus(ctx, method, err)
	if errors.Is(err, ErrUnavailable) {
		e.lost(p)
	}
	return err
}

// lost tells the supervisor that p stopped answering.
func (e *Engine) lost(p *proc) {
	if e.start == nil {
		return
	}
	e.mu.Lock()
	if e.cur == p {
		e.cur = nil
		e.gen.Store(0)
	}
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// supervise restarts the plugin whenever its process exits or a call
// finds it gone, until Close.
func (e *Engine) supervise() {
	defer close(e.supervised)
	poll := time.NewTicker(exitPoll)
	defer poll.Stop()
	backoff := e.backoff
	e.mu.Lock()
	p := e.cur
	e.mu.Unlock()
	up := time.Now()
	for {
		select {
		case <-e.stopCtx.Done():
			return
		case <-e.kick:
		case <-poll.C:
		}
		e.mu.Lock()
		alive := e.cur == p && !p.exited()
		if !alive && e.cur == p {
			e.cur = nil
			e.gen.Store(0)
		}
		e.mu.Unlock()
		if alive {
			continue
		}
		p.kill()
		if time.Since(up) >= stableRun {
			backoff = e.backoff
		}
		e.log.Error("plugin exited; restarting", "plugin", e.path, "pid", p.pid, "run", p.gen, "backoff", backoff)
		for {
			select {
			case <-e.stopCtx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, e.maxBackoff)
			np, err := e.start(e.stopCtx)
			if err != nil {
				if e.stopCtx.Err() != nil {
					return
				}
				e.log.Error("plugin restart failed; retrying", "plugin", e.path, "err", err, "backoff", backoff)
				continue
			}
			np.gen = p.gen + 1
			p = np
			break
		}
		// The open logs are opened in the new process before calls
		// reach it, so none answers Offsets from before the restart.
		e.mu.Lock()
		logs := slices.Collect(maps.Keys(e.logs))
		e.mu.Unlock()
		reopened := 0
		for _, l := range logs {
			if l.reopen(e.stopCtx, p) == nil {
				reopened++
			}
		}
		e.mu.Lock()
		if e.closed.Load() {
			e.mu.Unlock()
			p.kill()
			return
		}
		e.cur = p
		e.gen.Store(p.gen)
		e.mu.Unlock()
		up = time.Now()
		e.log.Info("plugin restarted", "plugin", e.path, "pid", p.pid, "run", p.gen, "logs", len(logs), "reopened", reopened)
	}
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

// Log is a log of a plugin's engine. Besides engine.Log it implements
// engine.BatchAppender, appending several batches in one round trip. Logs
// whose plugin-side log implements engine.Sizer implement it too.
type Log struct {
	e    *Engine
	tp   engine.TopicPartition
	opts engine.LogOptions

	// hmu guards the log's handle h in the plugin run p it is open in
	// (nil once closed); a call that finds the plugin restarted opens the
	// log again in the new run, under hmu.
	hmu sync.Mutex
	h   uint64
	p   atomic.Pointer[proc]

	// offsets caches the plugin log's offsets, as every write call
	// returns them, so Offsets never makes a call (the host is the
	// log's only writer).
	offMu      sync.Mutex
	start, end int64
	closed     atomic.Bool
}

var (
	_ engine.Log           = (*Log)(nil)
	_ engine.BatchAppender = (*Log)(nil)
)

func (l *Log) setOffsets(start, end int64) {
	l.offMu.Lock()
	l.start, l.end = start, end
	l.offMu.Unlock()
}

// handle returns the running plugin and the log's handle in it, opening
// the log there first if the plugin restarted since.
func (l *Log) handle(ctx context.Context) (*proc, uint64, error) {
	if l.closed.Load() {
		return nil, 0, l.e.errClosed()
	}
	p, err := l.e.proc()
	if err != nil {
		return nil, 0, err
	}
	if err := l.reopen(ctx, p); err != nil {
		return nil, 0, err
	}
	l.hmu.Lock()
	defer l.hmu.Unlock()
	return p, l.h, nil
}

// reopen opens the log in p if it is not open there yet, and takes the
// offsets p's engine recovered.
func (l *Log) reopen(ctx context.Context, p *proc) error {
	if l.p.Load() == p {
		return nil
	}
	l.hmu.Lock()
	defer l.hmu.Unlock()
	if l.p.Load() == p {
		return nil
	}
	if l.closed.Load() {
		return l.e.errClosed()
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	resp, err := p.c.OpenLog(ctx, &enginepb.OpenLogRequest{Tp: tpToPB(l.tp), Opts: logOptionsToPB(l.opts)})
	if err != nil {
		return l.e.result(ctx, p, "OpenLog", err)
	}
	if l.closed.Load() {
		// Closed (or deleted) while it was being opened again, when
		// Close found no plugin to close it in: close it here.
		p.c.CloseLog(ctx, &enginepb.LogRequest{Handle: resp.GetHandle()})
		return l.e.errClosed()
	}
	l.h = resp.GetHandle()
	l.setOffsets(resp.GetStart(), resp.GetEnd())
	l.p.Store(p)
	return nil
}

// Append implements engine.Log.
func (l *Log) Append(ctx context.Context, meta engine.BatchMeta, batch []byte) error {
	_, err := l.AppendBatches(ctx, []engine.Batch{{Meta: meta, Data: batch}})
	return err
}

// AppendBatches implements engine.BatchAppender. It sends the batches in
// as few requests as keep each under a few MiB, with their bytes in the
// plugin's shared region when it has room, over a lane (see appendCall).
func (l *Log) AppendBatches(ctx context.Context, batches []engine.Batch) (int, error) {
	done := 0
	for done < len(batches) {
		n, err := l.appendCall(ctx, batches[done:])
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// appendCall appends the first of batches that fit in one request (at
// least one) and returns how many went in. They are copied, with their
// metadata, into a span of the plugin run's shared region if it has one
// with room, and the request goes over a lane; otherwise they travel in
// an Append call. The span is free again when the call is over, or, if
// the call was given up while the plugin read it, when the plugin is done
// with it.
func (l *Log) appendCall(ctx context.Context, batches []engine.Batch) (int, error) {
	p, h, err := l.handle(ctx)
	if err != nil {
		return 0, err
	}
	k, size := 0, 0
	for _, b := range batches {
		if k > 0 && size+len(b.Data) > appendMessageBytes {
			break
		}
		k++
		size += len(b.Data)
	}
	batches = batches[:k]
	req := &enginepb.AppendRequest{Handle: h}
	var span *shmSpan
	if r := p.region(l.e); r != nil {
		span = r.alloc(k*shmRecordBytes + size)
	}
	if span != nil {
		defer span.release()
		shmPut(span.data, batches)
		req.ShmSpan, req.ShmTag, req.ShmLength, req.ShmBatches = span.off, span.tag, uint64(len(span.data)), uint32(k)
	} else {
		req.Batches = make([]*enginepb.Batch, k)
		for i, b := range batches {
			req.Batches[i] = &enginepb.Batch{Meta: metaToPB(b.Meta), Data: b.Data}
		}
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	if span != nil {
		if n, err, ok := l.laneAppend(ctx, p, req); ok {
			return n, err
		}
	}
	resp, err := p.c.Append(ctx, req)
	if err != nil {
		n := 0
		if st, ok := grpcStatus(err); ok {
			for _, d := range st.Details() {
				if ae, ok := d.(*enginepb.AppendError); ok {
					n = int(ae.GetAppended())
					l.setOffsets(ae.GetStart(), ae.GetEnd())
				}
			}
		}
		return n, l.e.result(ctx, p, "Append", err)
	}
	l.setOffsets(resp.GetStart(), resp.GetEnd())
	return k, nil
}

// laneAppend sends req over a lane of p's and returns how many batches
// went in; ok is false if p has no lane to spare, and req went nowhere.
func (l *Log) laneAppend(ctx context.Context, p *proc, req *enginepb.AppendRequest) (n int, err error, ok bool) {
	ln := p.lanes.get(func() (*lane, error) {
		lctx, cancel := l.e.callContext(context.Background())
		defer cancel()
		return openLane(lctx, p.c)
	})
	if ln == nil {
		return 0, nil, false
	}
	reply, fit, err := ln.call(ctx, req)
	p.lanes.put(ln, fit)
	if err != nil {
		// Short of ctx, only a dead plugin (or one that broke the
		// lane's framing, which is as bad) fails a lane.
		if cerr := ctx.Err(); cerr != nil {
			return 0, fmt.Errorf("plugins: Append: %w", cerr), true
		}
		l.e.lost(p)
		return 0, fmt.Errorf("%w: Append: %v", ErrUnavailable, err), true
	}
	if o := reply.GetOffsets(); o != nil {
		l.setOffsets(o.GetStart(), o.GetEnd())
	}
	if reply.GetError() == nil && reply.GetCode() == 0 {
		return int(req.GetShmBatches()), nil, true
	}
	st := status.New(codes.Code(reply.GetCode()), reply.GetError().GetMessage())
	if d := reply.GetError(); d != nil {
		if wd, err := st.WithDetails(d); err == nil {
			st = wd
		}
	}
	return int(reply.GetAppended()), l.e.result(ctx, p, "Append", st.Err()), true
}

// Read implements engine.Log. The chunks are the host's own memory, one
// per message the plugin sent; they need no Release (Pin is nil).
func (l *Log) Read(ctx context.Context, from int64, maxBytes int) (engine.Records, error) {
	p, h, err := l.handle(ctx)
	if err != nil {
		return engine.Records{}, err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	stream, err := p.c.Read(ctx, &enginepb.ReadRequest{Handle: h, From: from, MaxBytes: int64(maxBytes)})
	if err != nil {
		return engine.Records{}, l.e.result(ctx, p, "Read", err)
	}
	var recs engine.Records
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			l.e.lost(p)
			return engine.Records{}, fmt.Errorf("%w: Read: stream ended before its last message", ErrUnavailable)
		}
		if err != nil {
			return engine.Records{}, l.e.result(ctx, p, "Read", err)
		}
		if len(m.GetData()) > 0 {
			recs.Chunks = append(recs.Chunks, m.GetData())
		}
		if m.GetLast() {
			recs.NextOffset = m.GetNextOffset()
			return recs, nil
		}
	}
}

// Offsets implements engine.Log. It makes no call, but in the moment
// after a restart that it finds the log not yet open in the new process:
// it returns the offsets the plugin reported after the last write, or
// after the log was opened again in a restarted plugin.
func (l *Log) Offsets() (start, end int64) {
	if g := l.e.gen.Load(); g != 0 && !l.closed.Load() && (l.p.Load() == nil || l.p.Load().gen != g) {
		l.handle(context.Background()) // on failure, the last known offsets
	}
	l.offMu.Lock()
	defer l.offMu.Unlock()
	return l.start, l.end
}

func (l *Log) offsetCall(ctx context.Context, method string, to int64,
	call func(enginepb.EngineClient, context.Context, *enginepb.OffsetRequest, ...grpc.CallOption) (*enginepb.OffsetsResponse, error)) error {
	p, h, err := l.handle(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	resp, err := call(p.c, ctx, &enginepb.OffsetRequest{Handle: h, Offset: to})
	if resp != nil {
		l.setOffsets(resp.GetStart(), resp.GetEnd())
	}
	return l.e.result(ctx, p, method, err)
}

// Truncate implements engine.Log.
func (l *Log) Truncate(ctx context.Context, to int64) error {
	return l.offsetCall(ctx, "Truncate", to, enginepb.EngineClient.Truncate)
}

// DeleteBefore implements engine.Log.
func (l *Log) DeleteBefore(ctx context.Context, to int64) error {
	return l.offsetCall(ctx, "DeleteBefore", to, enginepb.EngineClient.DeleteBefore)
}

// OffsetForTime implements engine.Log.
func (l *Log) OffsetForTime(ctx context.Context, ts int64) (int64, error) {
	p, h, err := l.handle(ctx)
	if err != nil {
		return 0, err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	resp, err := p.c.OffsetForTime(ctx, &enginepb.OffsetRequest{Handle: h, Offset: ts})
	if err != nil {
		return 0, l.e.result(ctx, p, "OffsetForTime", err)
	}
	return resp.GetOffset(), nil
}

// Sync implements engine.Log.
func (l *Log) Sync(ctx context.Context) error {
	p, h, err := l.handle(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	_, err = p.c.Sync(ctx, &enginepb.LogRequest{Handle: h})
	return l.e.result(ctx, p, "Sync", err)
}

// Close implements engine.Log. It closes the log in the plugin run it is
// open in (a run that died has nothing left to close).
func (l *Log) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	l.e.mu.Lock()
	delete(l.e.logs, l)
	l.e.mu.Unlock()
	l.hmu.Lock()
	p, h := l.p.Swap(nil), l.h
	l.hmu.Unlock()
	if p == nil || l.e.closed.Load() {
		return nil
	}
	ctx, cancel := l.e.callContext(context.Background())
	defer cancel()
	_, err := p.c.CloseLog(ctx, &enginepb.LogRequest{Handle: h})
	if err = l.e.result(ctx, p, "CloseLog", err); errors.Is(err, ErrUnavailable) {
		return nil
	}
	return err
}

// sizerLog is a Log whose plugin-side log implements engine.Sizer.
type sizerLog struct{ *Log }

var _ engine.Sizer = sizerLog{}

// Size implements engine.Sizer. It returns -1 if the call fails (the
// plugin died or the log is closed).
func (l sizerLog) Size() int64 {
	p, h, err := l.handle(context.Background())
	if err != nil {
		return -1
	}
	ctx, cancel := l.e.callContext(context.Background())
	defer cancel()
	resp, err := p.c.Size(ctx, &enginepb.LogRequest{Handle: h})
	if err != nil {
		l.e.result(ctx, p, "Size", err)
		return -1
	}
	return resp.GetSize()
}
