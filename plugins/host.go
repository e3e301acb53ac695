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
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

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

// Open starts the plugin program at path, checks its handshake, and opens
// its engine with state under dir and opts (Options.Log and Settings travel
// to the plugin; FS, Logger and Now stay in the host, which gives the
// plugin its own). Settings named strata.plugin.* configure the host side
// and are not sent. The returned engine's Close kills the process.
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
// its argument). cmd must not have been started.
func OpenCommand(ctx context.Context, cmd *exec.Cmd, dir string, opts engine.Options) (engine.Engine, error) {
	path := cmd.Path
	timeout, err := prepare(&opts)
	if err != nil {
		return nil, err
	}
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
	e, err := newEngine(ctx, raw.(enginepb.EngineClient), dir, opts, timeout, client.Kill)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugins: %s: %w", path, err)
	}
	e.client = client
	return e, nil
}

func callTimeout(settings map[string]string) (time.Duration, error) {
	v, ok := settings[SettingCallTimeout]
	if !ok {
		return DefaultCallTimeout, nil
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 1 {
		return 0, fmt.Errorf("%w: %s=%q: must be an integer >= 1", engine.ErrInvalidOptions, SettingCallTimeout, v)
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

// Engine is an engine served by a plugin process, as the host sees it.
type Engine struct {
	c       enginepb.EngineClient
	timeout time.Duration
	kill    func()
	client  *plugin.Client // nil when not started by Open

	closed    atomic.Bool
	closeOnce sync.Once
}

var _ engine.Engine = (*Engine)(nil)

func newEngine(ctx context.Context, c enginepb.EngineClient, dir string, opts engine.Options, timeout time.Duration, kill func()) (*Engine, error) {
	e := &Engine{c: c, timeout: timeout, kill: kill}
	settings := maps.Clone(opts.Settings)
	maps.DeleteFunc(settings, func(k, _ string) bool { return strings.HasPrefix(k, "strata.plugin.") })
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	_, err := c.Init(ctx, &enginepb.InitRequest{Dir: dir, Log: logOptionsToPB(opts.Log), Settings: settings})
	if err != nil {
		return nil, fromStatus(ctx, "Init", err)
	}
	return e, nil
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
	if e.closed.Load() {
		return nil, e.errClosed()
	}
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	resp, err := e.c.OpenLog(ctx, &enginepb.OpenLogRequest{Tp: tpToPB(tp), Opts: logOptionsToPB(opts)})
	if err != nil {
		return nil, fromStatus(ctx, "OpenLog", err)
	}
	l := &Log{e: e, h: resp.GetHandle()}
	l.setOffsets(resp.GetStart(), resp.GetEnd())
	if resp.GetSizer() {
		return &sizerLog{l}, nil
	}
	return l, nil
}

// Logs implements engine.Engine.
func (e *Engine) Logs(ctx context.Context) ([]engine.TopicPartition, error) {
	if e.closed.Load() {
		return nil, e.errClosed()
	}
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	resp, err := e.c.Logs(ctx, &enginepb.Empty{})
	if err != nil {
		return nil, fromStatus(ctx, "Logs", err)
	}
	tps := make([]engine.TopicPartition, len(resp.GetLogs()))
	for i, tp := range resp.GetLogs() {
		tps[i] = tpFromPB(tp)
	}
	return tps, nil
}

// DeleteLog implements engine.Engine.
func (e *Engine) DeleteLog(ctx context.Context, tp engine.TopicPartition) error {
	if e.closed.Load() {
		return e.errClosed()
	}
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	_, err := e.c.DeleteLog(ctx, tpToPB(tp))
	return fromStatus(ctx, "DeleteLog", err)
}

// Close closes the plugin's engine and kills the plugin process. It is
// idempotent.
func (e *Engine) Close() error {
	err := e.errClosed()
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		ctx, cancel := e.callContext(context.Background())
		defer cancel()
		_, cerr := e.c.Close(ctx, &enginepb.Empty{})
		err = fromStatus(ctx, "Close", cerr)
		if e.kill != nil {
			e.kill()
		}
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
	if e.closed.Load() {
		return e.errClosed()
	}
	ctx, cancel := e.callContext(ctx)
	defer cancel()
	_, err := e.c.SetFailWrites(ctx, &enginepb.SetFailWritesRequest{On: on})
	return fromStatus(ctx, "SetFailWrites", err)
}

// Log is a log of a plugin's engine. Besides engine.Log it offers
// AppendBatches, which appends several batches in one round trip. Logs
// whose plugin-side log implements engine.Sizer implement it too.
type Log struct {
	e *Engine
	h uint64

	// offsets caches the plugin log's offsets, as every write call
	// returns them, so Offsets never makes a call (the host is the
	// log's only writer).
	offMu      sync.Mutex
	start, end int64
	closed     atomic.Bool
}

var _ engine.Log = (*Log)(nil)

func (l *Log) setOffsets(start, end int64) {
	l.offMu.Lock()
	l.start, l.end = start, end
	l.offMu.Unlock()
}

func (l *Log) check() error {
	if l.closed.Load() || l.e.closed.Load() {
		return l.e.errClosed()
	}
	return nil
}

// Batch is one batch for AppendBatches.
type Batch struct {
	Meta engine.BatchMeta
	Data []byte
}

// Append implements engine.Log.
func (l *Log) Append(ctx context.Context, meta engine.BatchMeta, batch []byte) error {
	_, err := l.AppendBatches(ctx, []Batch{{meta, batch}})
	return err
}

// AppendBatches appends batches in order, as that many Appends would,
// stopping at the first that fails. It returns how many were appended. It
// sends them in as few calls as keep each message under a few MiB.
func (l *Log) AppendBatches(ctx context.Context, batches []Batch) (int, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	done := 0
	for done < len(batches) {
		req := &enginepb.AppendRequest{Handle: l.h}
		size := 0
		for _, b := range batches[done:] {
			if len(req.Batches) > 0 && size+len(b.Data) > appendMessageBytes {
				break
			}
			req.Batches = append(req.Batches, &enginepb.Batch{Meta: metaToPB(b.Meta), Data: b.Data})
			size += len(b.Data)
		}
		n, err := l.appendCall(ctx, req)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

func (l *Log) appendCall(ctx context.Context, req *enginepb.AppendRequest) (int, error) {
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	resp, err := l.e.c.Append(ctx, req)
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
		return n, fromStatus(ctx, "Append", err)
	}
	l.setOffsets(resp.GetStart(), resp.GetEnd())
	return len(req.Batches), nil
}

// Read implements engine.Log. The chunks are the host's own memory, one
// per message the plugin sent; they need no Release (Pin is nil).
func (l *Log) Read(ctx context.Context, from int64, maxBytes int) (engine.Records, error) {
	if err := l.check(); err != nil {
		return engine.Records{}, err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	stream, err := l.e.c.Read(ctx, &enginepb.ReadRequest{Handle: l.h, From: from, MaxBytes: int64(maxBytes)})
	if err != nil {
		return engine.Records{}, fromStatus(ctx, "Read", err)
	}
	var recs engine.Records
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return engine.Records{}, fmt.Errorf("%w: Read: stream ended before its last message", ErrUnavailable)
		}
		if err != nil {
			return engine.Records{}, fromStatus(ctx, "Read", err)
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

// Offsets implements engine.Log. It makes no call: it returns the offsets
// the plugin reported after the last write.
func (l *Log) Offsets() (start, end int64) {
	l.offMu.Lock()
	defer l.offMu.Unlock()
	return l.start, l.end
}

func (l *Log) offsetCall(ctx context.Context, method string, to int64,
	call func(context.Context, *enginepb.OffsetRequest, ...grpc.CallOption) (*enginepb.OffsetsResponse, error)) error {
	if err := l.check(); err != nil {
		return err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	resp, err := call(ctx, &enginepb.OffsetRequest{Handle: l.h, Offset: to})
	if resp != nil {
		l.setOffsets(resp.GetStart(), resp.GetEnd())
	}
	return fromStatus(ctx, method, err)
}

// Truncate implements engine.Log.
func (l *Log) Truncate(ctx context.Context, to int64) error {
	return l.offsetCall(ctx, "Truncate", to, l.e.c.Truncate)
}

// DeleteBefore implements engine.Log.
func (l *Log) DeleteBefore(ctx context.Context, to int64) error {
	return l.offsetCall(ctx, "DeleteBefore", to, l.e.c.DeleteBefore)
}

// OffsetForTime implements engine.Log.
func (l *Log) OffsetForTime(ctx context.Context, ts int64) (int64, error) {
	if err := l.check(); err != nil {
		return 0, err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	resp, err := l.e.c.OffsetForTime(ctx, &enginepb.OffsetRequest{Handle: l.h, Offset: ts})
	if err != nil {
		return 0, fromStatus(ctx, "OffsetForTime", err)
	}
	return resp.GetOffset(), nil
}

// Sync implements engine.Log.
func (l *Log) Sync(ctx context.Context) error {
	if err := l.check(); err != nil {
		return err
	}
	ctx, cancel := l.e.callContext(ctx)
	defer cancel()
	_, err := l.e.c.Sync(ctx, &enginepb.LogRequest{Handle: l.h})
	return fromStatus(ctx, "Sync", err)
}

// Close implements engine.Log.
func (l *Log) Close() error {
	if l.closed.Swap(true) || l.e.closed.Load() {
		return nil
	}
	ctx, cancel := l.e.callContext(context.Background())
	defer cancel()
	_, err := l.e.c.CloseLog(ctx, &enginepb.LogRequest{Handle: l.h})
	return fromStatus(ctx, "CloseLog", err)
}

// sizerLog is a Log whose plugin-side log implements engine.Sizer.
type sizerLog struct{ *Log }

var _ engine.Sizer = sizerLog{}

// Size implements engine.Sizer. It returns -1 if the call fails (the
// plugin died or the log is closed).
func (l sizerLog) Size() int64 {
	if l.check() != nil {
		return -1
	}
	ctx, cancel := l.e.callContext(context.Background())
	defer cancel()
	resp, err := l.e.c.Size(ctx, &enginepb.LogRequest{Handle: l.h})
	if err != nil {
		return -1
	}
	return resp.GetSize()
}
