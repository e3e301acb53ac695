package plugins

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/strata-broker/strata/plugins/enginepb"
)

// Lanes. An append whose batches lie in the shared region is a request of a
// few dozen bytes, and over gRPC most of its cost would be the call itself:
// each side hands the message between several goroutines, and the round
// trip takes several times what a write and a read on a pipe take. So such
// appends travel over lanes: pairs of pipes, each serving one call at a
// time, which the host keeps in a pool per plugin run and the plugin serves
// with one goroutine each (see enginepb's OpenLane). Appends that cannot
// have a lane use the Append call.

// maxLanes bounds the lanes of a plugin run, so as many appends can go at
// once over lanes; more wait for gRPC.
const maxLanes = 32

// maxLaneMessage bounds a lane message; requests carry no batch bytes.
const maxLaneMessage = 1 << 20

// lane is the host's ends of a lane.
type lane struct {
	w   *os.File // requests, to the plugin
	r   *os.File // replies, from the plugin
	buf []byte
}

func (ln *lane) close() {
	ln.w.Close()
	ln.r.Close()
}

// lanes is a plugin run's pool of lanes.
type lanes struct {
	mu     sync.Mutex
	idle   []*lane
	open   int  // lanes in use or idle
	off    bool // no more lanes: closed, or the plugin cannot open them
	closed bool
	// failures counts lanes that failed to open in a row.
	failures int
}

// get returns an idle lane, or a new one if there are fewer than maxLanes,
// or nil.
func (ls *lanes) get(open func() (*lane, error)) *lane {
	ls.mu.Lock()
	if ls.off {
		ls.mu.Unlock()
		return nil
	}
	if n := len(ls.idle); n > 0 {
		ln := ls.idle[n-1]
		ls.idle = ls.idle[:n-1]
		ls.mu.Unlock()
		return ln
	}
	if ls.open >= maxLanes {
		ls.mu.Unlock()
		return nil
	}
	ls.open++
	ls.mu.Unlock()
	ln, err := open()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err != nil {
		ls.open--
		// A plugin that cannot have lanes (an older one, or one that
		// cannot open the pipes) is not asked again; a failure that
		// may pass (a call timing out) is, a few times in a row.
		ls.failures++
		if status.Code(err) == codes.Unimplemented || ls.failures >= maxLaneFailures {
			ls.off = true
		}
		return nil
	}
	ls.failures = 0
	return ln
}

// maxLaneFailures is how many lanes in a row may fail to open before a
// plugin run uses gRPC calls only.
const maxLaneFailures = 3

// put gives ln back for the next call, or closes it if it is not fit for
// one (its call ended half-way) or the pool is closed.
func (ls *lanes) put(ln *lane, fit bool) {
	ls.mu.Lock()
	if fit && !ls.closed {
		ls.idle = append(ls.idle, ln)
		ls.mu.Unlock()
		return
	}
	ls.open--
	ls.mu.Unlock()
	ln.close()
}

// close closes the idle lanes, and the others as their calls end.
func (ls *lanes) close() {
	ls.mu.Lock()
	idle := ls.idle
	ls.idle, ls.closed, ls.off = nil, true, true
	ls.open -= len(idle)
	ls.mu.Unlock()
	for _, ln := range idle {
		ln.close()
	}
}

// openLane makes the pipes of a lane and has the plugin open its ends.
func openLane(ctx context.Context, c enginepb.EngineClient) (*lane, error) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		reqR.Close()
		reqW.Close()
		return nil, err
	}
	// The plugin opens its ends through ours, which then go.
	defer reqR.Close()
	defer repW.Close()
	_, err = c.OpenLane(ctx, &enginepb.LaneRequest{Requests: procPath(reqR), Replies: procPath(repW)})
	if err != nil {
		reqW.Close()
		repR.Close()
		return nil, err
	}
	return &lane{w: reqW, r: repR}, nil
}

// procPath is the path another process opens f by, while f is open.
func procPath(f *os.File) string {
	var fd uintptr
	if sc, err := f.SyscallConn(); err == nil {
		sc.Control(func(d uintptr) { fd = d })
	}
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd)
}

// errLaneBroken is a lane's failure that says nothing of the plugin's
// fate: a message too large or not a message.
var errLaneBroken = errors.New("plugins: lane: malformed message")

// writeMessage writes m to w, framed, using buf.
func writeMessage(w io.Writer, buf []byte, m proto.Message) ([]byte, error) {
	buf = append(buf[:0], 0, 0, 0, 0)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return buf, err
	}
	binary.LittleEndian.PutUint32(buf, uint32(len(buf)-4))
	_, err = w.Write(buf)
	return buf, err
}

// readMessage reads a framed message from r into m, using buf.
func readMessage(r io.Reader, buf []byte, m proto.Message) ([]byte, error) {
	buf = append(buf[:0], 0, 0, 0, 0)
	if _, err := io.ReadFull(r, buf); err != nil {
		return buf, err
	}
	n := binary.LittleEndian.Uint32(buf)
	if n > maxLaneMessage {
		return buf, errLaneBroken
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	if err := proto.Unmarshal(buf, m); err != nil {
		return buf, errLaneBroken
	}
	return buf, nil
}

// call sends req over ln and returns the plugin's reply. If ctx ends
// first, call returns ctx's error and ln is no longer fit for use (fit is
// false), as after any failure.
func (ln *lane) call(ctx context.Context, req *enginepb.AppendRequest) (reply *enginepb.AppendReply, fit bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, true, err
	}
	stop := context.AfterFunc(ctx, func() {
		now := time.Now()
		ln.w.SetWriteDeadline(now)
		ln.r.SetReadDeadline(now)
	})
	ln.buf, err = writeMessage(ln.w, ln.buf, req)
	if err == nil {
		reply = &enginepb.AppendReply{}
		ln.buf, err = readMessage(ln.r, ln.buf, reply)
	}
	if !stop() { // the deadlines were moved
		if err == nil {
			return reply, false, nil
		}
		return nil, false, ctx.Err()
	}
	if err != nil {
		return nil, false, err
	}
	if cap(ln.buf) > 64<<10 {
		ln.buf = nil
	}
	return reply, true, nil
}

// serveLane answers the requests of a lane until the host closes it.
func (s *server) serveLane(r, w *os.File) {
	defer r.Close()
	defer w.Close()
	var buf []byte
	for {
		req := &enginepb.AppendRequest{}
		var err error
		if buf, err = readMessage(r, buf, req); err != nil {
			return
		}
		offsets, appended, err := s.append(context.Background(), req)
		if buf, err = writeMessage(w, buf, appendReply(offsets, appended, err)); err != nil {
			return
		}
	}
}

// OpenLane opens the plugin's ends of a lane and serves it.
func (s *server) OpenLane(_ context.Context, req *enginepb.LaneRequest) (*enginepb.Empty, error) {
	r, err := os.OpenFile(req.GetRequests(), os.O_RDONLY, 0)
	if err != nil {
		return nil, toStatus(fmt.Errorf("plugin lane: %w", err))
	}
	w, err := os.OpenFile(req.GetReplies(), os.O_WRONLY, 0)
	if err != nil {
		r.Close()
		return nil, toStatus(fmt.Errorf("plugin lane: %w", err))
	}
	go s.serveLane(r, w)
	return &enginepb.Empty{}, nil
}
