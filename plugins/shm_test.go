package plugins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// testRegion is a shared region over plain memory, with the plugin's view
// of the same bytes.
func testRegion(size int) (*shmRegion, *shmView, *int) {
	b := make([]byte, size)
	unmaps := new(int)
	r := newShmRegion(b, func([]byte) error { *unmaps++; return nil })
	return r, &shmView{b: b}, unmaps
}

func spanRequest(s *shmSpan, n int) *enginepb.AppendRequest {
	return &enginepb.AppendRequest{ShmSpan: s.off, ShmTag: s.tag, ShmLength: uint64(len(s.data)), ShmBatches: uint32(n)}
}

func TestShmRing(t *testing.T) {
	r, _, _ := testRegion(4096)
	// Spans do not overlap, and the ring is full when the oldest is not free.
	a := r.alloc(1000)
	b := r.alloc(1000)
	c := r.alloc(1000)
	if a == nil || b == nil || c == nil {
		t.Fatal("three spans of 1000 bytes do not fit in 4096")
	}
	if d := r.alloc(1000); d != nil {
		t.Fatal("a fourth span fits: the ring overlaps")
	}
	for i, s := range []*shmSpan{a, b, c} {
		for j := range s.data {
			s.data[j] = byte(i + 1)
		}
	}
	for i, s := range []*shmSpan{a, b, c} {
		if bytes.Count(s.data, []byte{byte(i + 1)}) != len(s.data) {
			t.Fatalf("span %d was overwritten", i)
		}
	}
	// Freed out of order: the room comes back when the oldest is free.
	b.release()
	if d := r.alloc(1000); d != nil {
		t.Fatal("allocated past a span in use")
	}
	a.release()
	d := r.alloc(1000) // wraps to the start of the ring
	if d == nil || d.off != 0 {
		t.Fatalf("no wrap to the start after the oldest spans were freed: %+v", d)
	}
	c.release()
	d.release()
	if n := r.inUse(); n != 0 {
		t.Fatalf("%d bytes in use after every span was released", n)
	}
	if s := r.alloc(4096); s != nil {
		t.Fatal("a span larger than the region minus its head was allocated")
	}
	for range 100 { // many laps
		s := r.alloc(3000)
		if s == nil {
			t.Fatal("an empty ring has no room for 3000 bytes")
		}
		s.release()
	}
}

func TestShmAbandoned(t *testing.T) {
	r, v, unmaps := testRegion(4096)
	put := func(s *shmSpan, base int64) {
		data, meta := enginetest.NewBatch(base, 1, 100, 0, 1)
		shmPut(s.data, []engine.Batch{{Meta: meta, Data: data}})
	}

	// The host gives up before the plugin takes the span: the span is
	// free at once, and the plugin refuses it.
	s := r.alloc(shmRecordBytes + 200)
	put(s, 0)
	req := spanRequest(s, 1)
	s.release()
	if n := r.inUse(); n != 0 {
		t.Fatalf("a span the plugin never took is still in use (%d bytes)", n)
	}
	if _, _, err := v.take(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("take of a span the host gave up: %v, want context.Canceled", err)
	}

	// A late request for a span freed and reused since, whose offset
	// now lies in another span's bytes that happen to hold its tag, is
	// refused too: the check words do not stand there.
	late := spanRequest(r.alloc(shmRecordBytes+200), 1)
	r.spans[len(r.spans)-1].release()
	big := r.alloc(2048)
	if late.GetShmSpan() <= big.off || late.GetShmSpan() >= big.off+uint64(shmSpanHead+len(big.data)) {
		// The ring moved on; place the stale offset inside big.
		late.ShmSpan = big.off + shmSpanHead + 64
	}
	shmWord(r.b, late.GetShmSpan()).Store(late.GetShmTag())
	if _, _, err := v.take(late); err == nil {
		t.Fatal("a stale request took bytes of another span")
	}
	big.release()

	// The host gives up while the plugin reads the span: the span stays
	// in use until the plugin is done.
	s = r.alloc(shmRecordBytes + 200)
	put(s, 7)
	data, done, err := v.take(spanRequest(s, 1))
	if err != nil {
		t.Fatal(err)
	}
	s.release()
	if r.inUse() == 0 {
		t.Fatal("a span the plugin is reading was freed")
	}
	var got engine.BatchMeta
	if n, err := shmBatches(data, 1, func(m engine.BatchMeta, b []byte) error { got = m; return engine.CheckAppend(m, b) }); n != 1 || err != nil || got.BaseOffset != 7 {
		t.Fatalf("shmBatches: %d, %v, %+v", n, err, got)
	}
	done()
	if n := r.inUse(); n != 0 {
		t.Fatalf("%d bytes in use after the plugin was done", n)
	}

	// Bad spans and records are ErrInvalidBatch.
	for _, req := range []*enginepb.AppendRequest{
		{ShmSpan: 4096, ShmTag: 1, ShmBatches: 1},
		{ShmSpan: 3, ShmTag: 1, ShmBatches: 1},
		{ShmSpan: 0, ShmTag: 1, ShmLength: 4096, ShmBatches: 1},
		{ShmSpan: 0, ShmTag: 0, ShmBatches: 1},
	} {
		if _, _, err := v.take(req); !errors.Is(err, engine.ErrInvalidBatch) {
			t.Errorf("take(%v): %v, want ErrInvalidBatch", req, err)
		}
	}
	if _, err := shmBatches(make([]byte, 40), 2, nil); !errors.Is(err, engine.ErrInvalidBatch) {
		t.Errorf("records past the span: %v", err)
	}
	over := make([]byte, 64)
	over[28] = 100 // a batch of 100 bytes in a span of 64
	if _, err := shmBatches(over, 1, nil); !errors.Is(err, engine.ErrInvalidBatch) {
		t.Errorf("a batch past the span: %v", err)
	}

	// Closing waits for the host's users.
	s = r.alloc(10)
	r.close()
	if *unmaps != 0 {
		t.Fatal("unmapped under a span in use")
	}
	if r.alloc(10) != nil {
		t.Fatal("allocated from a closed region")
	}
	s.release()
	if *unmaps != 1 {
		t.Fatalf("%d unmaps after the last release, want 1", *unmaps)
	}
}

// groups returns n batches from offset base, of sizes cycling through sizes.
func groups(base int64, n int, sizes ...int) []engine.Batch {
	out := make([]engine.Batch, n)
	for i := range out {
		data, meta := enginetest.NewBatch(base+int64(i), 1, sizes[i%len(sizes)], base+int64(i), byte(i))
		out[i] = engine.Batch{Meta: meta, Data: data}
	}
	return out
}

// checkLog reads the whole log and compares it with want.
func checkLog(t *testing.T, l engine.Log, want []engine.Batch) {
	t.Helper()
	var buf []byte
	for _, b := range want {
		buf = append(buf, b.Data...)
	}
	recs, err := l.Read(context.Background(), 0, len(buf)+1)
	if err != nil {
		t.Fatal(err)
	}
	defer recs.Release()
	if got := bytes.Join(recs.Chunks, nil); !bytes.Equal(got, buf) || recs.NextOffset != int64(len(want)) {
		t.Fatalf("read %d bytes up to %d; want %d bytes up to %d", len(got), recs.NextOffset, len(buf), len(want))
	}
}

// sharedFiles lists the shared regions' files in shmDir and the mappings
// of them in this process (deleted files stay mapped under their name).
func sharedFiles(t *testing.T) (files, maps []string) {
	t.Helper()
	ents, _ := os.ReadDir(shmDir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "strata-plugin-") {
			files = append(files, e.Name())
		}
	}
	m, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(m), "\n") {
		if strings.Contains(line, filepath.Join(shmDir, "strata-plugin-")) {
			maps = append(maps, line)
		}
	}
	return files, maps
}

// curProc returns the engine's running plugin, waiting for a restart.
func curProc(t *testing.T, e *Engine, not *proc) *proc {
	t.Helper()
	for start := time.Now(); time.Since(start) < 20*time.Second; time.Sleep(10 * time.Millisecond) {
		e.mu.Lock()
		p := e.cur
		e.mu.Unlock()
		if p != nil && p != not {
			return p
		}
	}
	t.Fatal("no plugin running")
	return nil
}

// TestAppendShared appends groups through a real plugin process: through
// the shared region, in the message when a group does not fit, and split
// across requests; a restarted plugin gets a new region, and nothing is
// left mapped or in shmDir after Close.
func TestAppendShared(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("shared regions need Linux")
	}
	ctx := context.Background()
	files0, maps0 := sharedFiles(t)
	opts := quietOptions()
	opts.Settings = map[string]string{SettingRestartBackoff: "50"}
	ee, err := openBuiltin(ctx, "mmap", t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	e := ee.(*Engine)
	defer e.Close()
	l, err := e.OpenLog(ctx, tp, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var all []engine.Batch
	appendAll := func(bs []engine.Batch) {
		t.Helper()
		if n, err := engine.AppendBatches(ctx, l, bs); n != len(bs) || err != nil {
			t.Fatalf("AppendBatches: %d of %d, %v", n, len(bs), err)
		}
		all = append(all, bs...)
	}
	appendAll(groups(0, 64, 1<<10, 100, 16<<10))
	p := curProc(t, e, nil)
	if p.shm == nil {
		t.Fatal("the plugin run has no shared region")
	}
	appendAll(groups(int64(len(all)), 12, 512<<10)) // split across requests
	appendAll(groups(int64(len(all)), 1, shmBytes)) // larger than the region: in the message
	appendAll(groups(int64(len(all)), 1, 10))       // and back
	if n := p.shm.inUse(); n != 0 {
		t.Fatalf("%d bytes of the region in use between calls", n)
	}
	checkLog(t, l, all)

	// A group failing in the middle appends the batches before.
	bad := groups(int64(len(all)), 4, 100)
	bad[2].Meta.BaseOffset++
	n, err := engine.AppendBatches(ctx, l, bad)
	if n != 2 || !errors.Is(err, engine.ErrNonContiguous) && !errors.Is(err, engine.ErrInvalidBatch) {
		t.Fatalf("AppendBatches with a bad third batch: %d, %v", n, err)
	}
	all = append(all, bad[:2]...)
	if _, end := l.Offsets(); end != int64(len(all)) {
		t.Fatalf("Offsets end %d after a failed group, want %d", end, len(all))
	}
	checkLog(t, l, all)

	// A restarted plugin maps a region of its own; the old one is gone.
	if err := syscall.Kill(e.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := engine.AppendBatches(ctx, l, groups(int64(len(all)), 1, 10))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("AppendBatches across a restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	all = append(all, groups(int64(len(all)), 1, 10)...)
	np := curProc(t, e, p)
	if np.shm == nil || np.shm == p.shm {
		t.Fatal("the restarted plugin has no region of its own")
	}
	p.shm.mu.Lock()
	unmapped := p.shm.b == nil
	p.shm.mu.Unlock()
	if !unmapped {
		t.Fatal("the dead plugin's region is still mapped")
	}
	appendAll(groups(int64(len(all)), 64, 1<<10))
	checkLog(t, l, all)

	np.lanes.mu.Lock()
	lanesOpen := np.lanes.open
	np.lanes.mu.Unlock()
	if lanesOpen == 0 {
		t.Fatal("appends went over no lane")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*proc{p, np} {
		p.lanes.mu.Lock()
		if p.lanes.open != 0 {
			t.Errorf("%d lanes open after Close", p.lanes.open)
		}
		p.lanes.mu.Unlock()
	}
	files, maps := sharedFiles(t)
	if len(files) != len(files0) || len(maps) != len(maps0) {
		t.Fatalf("after Close: files %v (before %v), mappings %v (before %v)", files, files0, maps, maps0)
	}
}

// TestAppendInMessage appends through the in-process pair with no shared
// region (shmDir missing), so the batches travel in the messages.
func TestAppendInMessage(t *testing.T) {
	defer func(d string) { shmDir = d }(shmDir)
	shmDir = filepath.Join(t.TempDir(), "missing")
	e, err := pair(t, openMem, t.TempDir(), quietOptions(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	l, err := e.OpenLog(context.Background(), tp, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bs := groups(0, 64, 1<<10, 64<<10)
	if n, err := engine.AppendBatches(context.Background(), l, bs); n != len(bs) || err != nil {
		t.Fatalf("AppendBatches: %d, %v", n, err)
	}
	if p := curProc(t, e, nil); p.shm != nil {
		t.Fatal("a region was set up in a missing directory")
	}
	checkLog(t, l, bs)
}

// gateEngine is mem whose appends to topic "slow" wait for gate.
type gateEngine struct {
	engine.Engine
	gate chan struct{}
}

func (g gateEngine) OpenLog(ctx context.Context, tp engine.TopicPartition, opts engine.LogOptions) (engine.Log, error) {
	l, err := g.Engine.OpenLog(ctx, tp, opts)
	if err != nil || tp.Topic != "slow" {
		return l, err
	}
	return gateLog{l, g.gate}, nil
}

type gateLog struct {
	engine.Log
	gate chan struct{}
}

func (g gateLog) Append(ctx context.Context, meta engine.BatchMeta, batch []byte) error {
	<-g.gate // a slow engine: ignores ctx
	return g.Log.Append(ctx, meta, batch)
}

// TestAppendGivenUp: an append the host gives up on while the plugin
// reads its batches keeps its span until the plugin is done; the log's
// stream is replaced and appends go on.
func TestAppendGivenUp(t *testing.T) {
	gate := make(chan struct{})
	open := func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
		e, err := openMem(ctx, dir, opts)
		return gateEngine{e, gate}, err
	}
	e, err := pair(t, open, t.TempDir(), quietOptions(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	l, err := e.OpenLog(ctx, engine.TopicPartition{Topic: "slow"}, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bs := groups(0, 4, 1<<10)
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := engine.AppendBatches(tctx, l, bs); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AppendBatches to a stuck engine: %v, want DeadlineExceeded", err)
	}
	p := curProc(t, e, nil)
	if p.shm == nil {
		t.Skip("no shared region here")
	}
	if p.shm.inUse() == 0 {
		t.Fatal("the span of a call the plugin still reads was freed")
	}
	close(gate)
	for start := time.Now(); p.shm.inUse() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the span was not freed after the plugin was done")
		}
	}
	// The plugin appended the group after all; the next append goes on
	// from there.
	more := groups(4, 2, 1<<10)
	if n, err := engine.AppendBatches(ctx, l, more); n != 2 || err != nil {
		t.Fatalf("AppendBatches after: %d, %v", n, err)
	}
	checkLog(t, l, append(bs, more...))
}

// olderServer is a plugin of before OpenLane and, unless share is set,
// Share.
type olderServer struct {
	*server
	share bool
}

func (olderServer) OpenLane(ctx context.Context, req *enginepb.LaneRequest) (*enginepb.Empty, error) {
	return enginepb.UnimplementedEngineServer{}.OpenLane(ctx, req)
}

func (o olderServer) Share(ctx context.Context, req *enginepb.ShareRequest) (*enginepb.Empty, error) {
	if o.share {
		return o.server.Share(ctx, req)
	}
	return enginepb.UnimplementedEngineServer{}.Share(ctx, req)
}

type olderPlugin struct {
	enginePlugin
	share bool
}

func (p *olderPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	enginepb.RegisterEngineServer(s, olderServer{newServer(p.open, nil), p.share})
	return nil
}

// TestOlderPlugin: a plugin without OpenLane gets Append calls, with the
// batches in the shared region if it has Share, and in the messages if
// not.
func TestOlderPlugin(t *testing.T) {
	for _, share := range []bool{false, true} {
		t.Run(fmt.Sprintf("share=%v", share), func(t *testing.T) {
			opts := quietOptions()
			timeout, err := prepare(&opts)
			if err != nil {
				t.Fatal(err)
			}
			client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{pluginName: &olderPlugin{enginePlugin{open: openMem}, share}})
			raw, err := client.Dispense(pluginName)
			if err != nil {
				t.Fatal(err)
			}
			c := raw.(enginepb.EngineClient)
			if err := initEngine(context.Background(), c, t.TempDir(), opts, timeout); err != nil {
				t.Fatal(err)
			}
			e := newHostEngine(&proc{c: c, kill: func() { client.Close() }}, timeout, "older", opts.Logger)
			defer e.Close()
			l, err := e.OpenLog(context.Background(), tp, engine.LogOptions{})
			if err != nil {
				t.Fatal(err)
			}
			bs := groups(0, 16, 1<<10)
			for i := 0; i < len(bs); i += 4 {
				if n, err := engine.AppendBatches(context.Background(), l, bs[i:i+4]); n != 4 || err != nil {
					t.Fatalf("AppendBatches: %d, %v", n, err)
				}
			}
			p := curProc(t, e, nil)
			if (p.shm != nil) != (share && runtime.GOOS == "linux") {
				t.Fatalf("shared region: %v", p.shm != nil)
			}
			if n, err := engine.AppendBatches(context.Background(), l, bs[:2]); n != 0 || !errors.Is(err, engine.ErrNonContiguous) {
				t.Fatalf("AppendBatches at 0 again: %d, %v, want ErrNonContiguous", n, err)
			}
			checkLog(t, l, bs)
		})
	}
}

// TestAppendConcurrent appends to many logs at once through a region too
// small for all of them, so that calls share the ring, wrap around it and
// fall back to the messages, and lanes are shared.
func TestAppendConcurrent(t *testing.T) {
	defer func(n int) { shmBytes = n }(shmBytes)
	shmBytes = 256 << 10
	e, err := pair(t, openMem, t.TempDir(), quietOptions(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	const logs, rounds = 8, 40
	errs := make(chan error, logs)
	want := make([][]engine.Batch, logs)
	ls := make([]engine.Log, logs)
	for i := range ls {
		if ls[i], err = e.OpenLog(ctx, engine.TopicPartition{Topic: "c", Partition: int32(i)}, engine.LogOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range logs {
		go func() {
			for r := range rounds {
				bs := groups(int64(len(want[i])), 1+r%9, 1<<10, 7<<10, 100, 30<<10)
				if n, err := engine.AppendBatches(ctx, ls[i], bs); n != len(bs) || err != nil {
					errs <- fmt.Errorf("log %d: AppendBatches: %d of %d, %v", i, n, len(bs), err)
					return
				}
				want[i] = append(want[i], bs...)
			}
			errs <- nil
		}()
	}
	for range logs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, l := range ls {
		checkLog(t, l, want[i])
	}
	if p := curProc(t, e, nil); p.shm != nil && p.shm.inUse() != 0 {
		t.Fatalf("%d bytes of the region in use after the appends", p.shm.inUse())
	}
}

// TestLanesRetry: a lane that fails to open for a passing reason is asked
// for again, up to maxLaneFailures in a row; a plugin without lanes is not.
func TestLanesRetry(t *testing.T) {
	var ls lanes
	calls := 0
	fail := func() (*lane, error) { calls++; return nil, errors.New("timed out") }
	for i := range maxLaneFailures {
		if ls.get(fail) != nil || calls != i+1 {
			t.Fatalf("attempt %d: %d calls", i, calls)
		}
	}
	if ls.get(fail); calls != maxLaneFailures {
		t.Errorf("asked again after %d failures in a row", maxLaneFailures)
	}
	var old lanes
	calls = 0
	unimpl := func() (*lane, error) { calls++; return nil, status.Error(codes.Unimplemented, "no lanes") }
	old.get(unimpl)
	old.get(unimpl)
	if calls != 1 {
		t.Errorf("a plugin without lanes was asked %d times", calls)
	}
}
