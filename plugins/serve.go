package plugins

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/faultfs"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// Serve serves the engine that open opens as a plugin: it answers the
// handshake and then calls open with the directory and options the host's
// Open passed, once the host asks. Call it from the plugin program's main;
// it returns when the host is done with the plugin. The engine gets
// Options.FS over the operating system's file system and a Logger writing
// to stderr, which go-plugin hands to the host's log.
func Serve(open engine.OpenFunc) {
	serve(open, Handshake)
}

func serve(open engine.OpenFunc, hs plugin.HandshakeConfig) {
	// plugin.Serve points os.Stderr elsewhere; the process's stderr is
	// what the host reads log lines from.
	stderr := os.Stderr
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         map[string]plugin.Plugin{pluginName: &enginePlugin{open: open, stderr: stderr}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts,
				grpc.MaxRecvMsgSize(maxMessageBytes),
				grpc.MaxSendMsgSize(maxMessageBytes))...)
		},
	})
}

// readMessageBytes is the most batch bytes one ReadChunk carries, unless a
// single batch is larger.
const readMessageBytes = 256 << 10

// server implements the service over the engine open returns.
type server struct {
	enginepb.UnimplementedEngineServer
	open   engine.OpenFunc
	stderr io.Writer // where the engine's Logger writes

	mu     sync.Mutex
	e      engine.Engine // nil until Init
	fs     *faultfs.FS   // fails writes while the host's SetFailWrites is on (tests)
	logs   map[uint64]engine.Log
	next   uint64
	closed bool

	shm shmView // the host's shared region, once Share mapped it
}

func newServer(open engine.OpenFunc, stderr io.Writer) *server {
	if stderr == nil {
		stderr = os.Stderr
	}
	return &server{open: open, stderr: stderr, logs: map[uint64]engine.Log{}}
}

func (s *server) engine() (engine.Engine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, fmt.Errorf("plugin engine: %w", engine.ErrClosed)
	case s.e == nil:
		return nil, fmt.Errorf("plugin engine: not initialised (Init was not called)")
	}
	return s.e, nil
}

func (s *server) log(h uint64) (engine.Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.logs[h]
	if !ok || s.closed {
		return nil, fmt.Errorf("plugin log handle %d: %w", h, engine.ErrClosed)
	}
	return l, nil
}

func (s *server) Init(ctx context.Context, req *enginepb.InitRequest) (*enginepb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.e != nil || s.closed {
		return nil, toStatus(fmt.Errorf("plugin engine: Init called twice"))
	}
	s.fs = faultfs.New(engine.OSFS)
	opts := engine.Options{
		FS:       s.fs,
		Logger:   stderrLogger(s.stderr),
		Log:      logOptionsFromPB(req.GetLog()),
		Settings: req.GetSettings(),
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, toStatus(err)
	}
	e, err := s.open(ctx, req.GetDir(), opts)
	if err != nil {
		return nil, toStatus(err)
	}
	s.e = e
	return &enginepb.Empty{}, nil
}

func (s *server) OpenLog(ctx context.Context, req *enginepb.OpenLogRequest) (*enginepb.OpenLogResponse, error) {
	e, err := s.engine()
	if err != nil {
		return nil, toStatus(err)
	}
	l, err := e.OpenLog(ctx, tpFromPB(req.GetTp()), logOptionsFromPB(req.GetOpts()))
	if err == nil && l == nil {
		err = fmt.Errorf("plugin engine: OpenLog returned neither a log nor an error")
	}
	if err != nil {
		return nil, toStatus(err)
	}
	s.mu.Lock()
	s.next++
	h := s.next
	s.logs[h] = l
	s.mu.Unlock()
	start, end := l.Offsets()
	_, sizer := l.(engine.Sizer)
	return &enginepb.OpenLogResponse{Handle: h, Start: start, End: end, Sizer: sizer}, nil
}

func (s *server) Logs(ctx context.Context, _ *enginepb.Empty) (*enginepb.LogsResponse, error) {
	e, err := s.engine()
	if err != nil {
		return nil, toStatus(err)
	}
	tps, err := e.Logs(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &enginepb.LogsResponse{Logs: make([]*enginepb.TopicPartition, len(tps))}
	for i, tp := range tps {
		resp.Logs[i] = tpToPB(tp)
	}
	return resp, nil
}

func (s *server) DeleteLog(ctx context.Context, req *enginepb.TopicPartition) (*enginepb.Empty, error) {
	e, err := s.engine()
	if err != nil {
		return nil, toStatus(err)
	}
	return &enginepb.Empty{}, toStatus(e.DeleteLog(ctx, tpFromPB(req)))
}

func (s *server) Close(context.Context, *enginepb.Empty) (*enginepb.Empty, error) {
	s.mu.Lock()
	e := s.e
	already := s.closed
	s.closed = true
	s.logs = map[uint64]engine.Log{}
	s.mu.Unlock()
	if e == nil || already {
		s.shm.close()
		return &enginepb.Empty{}, nil
	}
	err := e.Close()
	s.shm.close()
	return &enginepb.Empty{}, toStatus(err)
}

// stderrLogger logs to stderr in the JSON form go-plugin reads (hclog's
// @level and @message), so the host logs each line at its level.
func stderrLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.LevelKey:
				return slog.String("@level", strings.ToLower(a.Value.String()))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}

// failWriter is implemented by engines with their own fault switch (such
// as mem, whose writes never reach Options.FS).
type failWriter interface{ SetFailWrites(on bool) }

func (s *server) SetFailWrites(_ context.Context, req *enginepb.SetFailWritesRequest) (*enginepb.Empty, error) {
	e, err := s.engine()
	if err != nil {
		return nil, toStatus(err)
	}
	if fw, ok := e.(failWriter); ok {
		fw.SetFailWrites(req.GetOn())
	}
	if req.GetOn() {
		s.fs.Fail(faultfs.ErrInjected)
	} else {
		s.fs.Fail(nil)
	}
	return &enginepb.Empty{}, nil
}

func (s *server) Append(ctx context.Context, req *enginepb.AppendRequest) (*enginepb.AppendResponse, error) {
	offsets, appended, err := s.append(ctx, req)
	switch {
	case err == nil:
		return &enginepb.AppendResponse{Start: offsets.GetStart(), End: offsets.GetEnd()}, nil
	case offsets == nil:
		return nil, toStatus(err)
	}
	return nil, toStatus(err, &enginepb.AppendError{Appended: int32(appended), Start: offsets.GetStart(), End: offsets.GetEnd()})
}

// appendReply is the lane's answer to an append that returned offsets,
// appended and err.
func appendReply(offsets *enginepb.OffsetsResponse, appended int, err error) *enginepb.AppendReply {
	reply := &enginepb.AppendReply{Offsets: offsets}
	if err != nil {
		st, _ := status.FromError(toStatus(err))
		reply.Code, reply.Appended = int32(st.Code()), int32(appended)
		for _, d := range st.Details() {
			if det, ok := d.(*enginepb.ErrorDetail); ok {
				reply.Error = det
			}
		}
	}
	return reply
}

// append appends req's batches, from the message or the shared region,
// and returns how many went in and the log's offsets after (nil if the
// handle names no open log).
func (s *server) append(ctx context.Context, req *enginepb.AppendRequest) (offsets *enginepb.OffsetsResponse, appended int, err error) {
	l, err := s.log(req.GetHandle())
	if err != nil {
		return nil, 0, err
	}
	if n := int(req.GetShmBatches()); n > 0 {
		var data []byte
		var done func()
		data, done, err = s.shm.take(req)
		if err == nil {
			appended, err = shmBatches(data, n, func(meta engine.BatchMeta, b []byte) error { return l.Append(ctx, meta, b) })
			done()
		}
	} else {
		for _, b := range req.GetBatches() {
			if err = l.Append(ctx, metaFromPB(b.GetMeta()), b.GetData()); err != nil {
				break
			}
			appended++
		}
	}
	start, end := l.Offsets()
	return &enginepb.OffsetsResponse{Start: start, End: end}, appended, err
}

// Share maps the host's shared region (see shmView).
func (s *server) Share(_ context.Context, req *enginepb.ShareRequest) (*enginepb.Empty, error) {
	if err := s.shm.share(req); err != nil {
		return nil, toStatus(err)
	}
	return &enginepb.Empty{}, nil
}

func (s *server) Read(req *enginepb.ReadRequest, stream grpc.ServerStreamingServer[enginepb.ReadChunk]) error {
	l, err := s.log(req.GetHandle())
	if err != nil {
		return toStatus(err)
	}
	recs, err := l.Read(stream.Context(), req.GetFrom(), int(req.GetMaxBytes()))
	if err != nil {
		return toStatus(err)
	}
	defer recs.Release()
	// Each message carries whole batches, so each becomes one chunk of
	// the host's Records.
	for _, c := range recs.Chunks {
		for len(c) > 0 {
			n := 0
			for n < len(c) && (n == 0 || n < readMessageBytes) {
				h, err := engine.ParseBatchHeader(c[n:])
				if err != nil || n+h.Size() > len(c) {
					return toStatus(fmt.Errorf("plugin read: %w: chunk does not hold whole batches", engine.ErrCorrupt))
				}
				if n > 0 && n+h.Size() > readMessageBytes {
					break
				}
				n += h.Size()
			}
			if err := stream.Send(&enginepb.ReadChunk{Data: c[:n]}); err != nil {
				return err
			}
			c = c[n:]
		}
	}
	return stream.Send(&enginepb.ReadChunk{Last: true, NextOffset: recs.NextOffset})
}

func (s *server) Offsets(_ context.Context, req *enginepb.LogRequest) (*enginepb.OffsetsResponse, error) {
	l, err := s.log(req.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	start, end := l.Offsets()
	return &enginepb.OffsetsResponse{Start: start, End: end}, nil
}

func (s *server) Truncate(ctx context.Context, req *enginepb.OffsetRequest) (*enginepb.OffsetsResponse, error) {
	l, err := s.log(req.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	err = l.Truncate(ctx, req.GetOffset())
	start, end := l.Offsets()
	return &enginepb.OffsetsResponse{Start: start, End: end}, toStatus(err)
}

func (s *server) DeleteBefore(ctx context.Context, req *enginepb.OffsetRequest) (*enginepb.OffsetsResponse, error) {
	l, err := s.log(req.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	err = l.DeleteBefore(ctx, req.GetOffset())
	start, end := l.Offsets()
	return &enginepb.OffsetsResponse{Start: start, End: end}, toStatus(err)
}

func (s *server) OffsetForTime(ctx context.Context, req *enginepb.OffsetRequest) (*enginepb.OffsetResponse, error) {
	l, err := s.log(req.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	off, err := l.OffsetForTime(ctx, req.GetOffset())
	if err != nil {
		return nil, toStatus(err)
	}
	return &enginepb.OffsetResponse{Offset: off}, nil
}

func (s *server) Sync(ctx context.Context, req *enginepb.LogRequest) (*enginepb.Empty, error) {
	l, err := s.log(req.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	return &enginepb.Empty{}, toStatus(l.Sync(ctx))
}

func (s *server) Size(_ context.Context, req *enginepb.LogRequest) (*enginepb.SizeResponse, error) {
	l, err := s.log(req.GetHandle())
	if err != nil {
		return nil, toStatus(err)
	}
	sz, ok := l.(engine.Sizer)
	if !ok {
		return nil, toStatus(fmt.Errorf("plugin log: does not implement engine.Sizer"))
	}
	return &enginepb.SizeResponse{Size: sz.Size()}, nil
}

func (s *server) CloseLog(_ context.Context, req *enginepb.LogRequest) (*enginepb.Empty, error) {
	s.mu.Lock()
	l, ok := s.logs[req.GetHandle()]
	delete(s.logs, req.GetHandle())
	s.mu.Unlock()
	if !ok {
		return &enginepb.Empty{}, nil // Close is idempotent
	}
	return &enginepb.Empty{}, toStatus(l.Close())
}

// Conversions between engine types and their messages.

func tpToPB(tp engine.TopicPartition) *enginepb.TopicPartition {
	return &enginepb.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}
}

func tpFromPB(tp *enginepb.TopicPartition) engine.TopicPartition {
	return engine.TopicPartition{Topic: tp.GetTopic(), Partition: tp.GetPartition()}
}

func metaToPB(m engine.BatchMeta) *enginepb.BatchMeta {
	return &enginepb.BatchMeta{BaseOffset: m.BaseOffset, LastOffset: m.LastOffset, MaxTimestamp: m.MaxTimestamp, RecordCount: m.RecordCount}
}

func metaFromPB(m *enginepb.BatchMeta) engine.BatchMeta {
	return engine.BatchMeta{BaseOffset: m.GetBaseOffset(), LastOffset: m.GetLastOffset(), MaxTimestamp: m.GetMaxTimestamp(), RecordCount: m.GetRecordCount()}
}

func logOptionsToPB(o engine.LogOptions) *enginepb.LogOptions {
	return &enginepb.LogOptions{
		SegmentBytes:        o.SegmentBytes,
		SegmentMs:           int64(o.SegmentMs),
		IndexIntervalBytes:  o.IndexIntervalBytes,
		SegmentIndexBytes:   o.SegmentIndexBytes,
		FlushMessages:       o.FlushMessages,
		FlushInterval:       int64(o.FlushInterval),
		LocalRetentionMs:    int64(o.LocalRetentionMs),
		LocalRetentionBytes: o.LocalRetentionBytes,
	}
}

func logOptionsFromPB(o *enginepb.LogOptions) engine.LogOptions {
	return engine.LogOptions{
		SegmentBytes:        o.GetSegmentBytes(),
		SegmentMs:           time.Duration(o.GetSegmentMs()),
		IndexIntervalBytes:  o.GetIndexIntervalBytes(),
		SegmentIndexBytes:   o.GetSegmentIndexBytes(),
		FlushMessages:       o.GetFlushMessages(),
		FlushInterval:       time.Duration(o.GetFlushInterval()),
		LocalRetentionMs:    time.Duration(o.GetLocalRetentionMs()),
		LocalRetentionBytes: o.GetLocalRetentionBytes(),
	}
}
