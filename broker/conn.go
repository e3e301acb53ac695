package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"

	"github.com/strata-broker/strata/coordination"
)

// minRequestSize is the smallest request header: api key (2), version (2),
// correlation id (4) and a client id length (2).
const minRequestSize = 10

// maxInFlight bounds the requests of one connection that are read but not
// yet answered. When it is reached the reader stops reading, which pushes
// back on the client through TCP.
const maxInFlight = 64

// header is a request header (v1, or v2 for flexible requests).
type header struct {
	key      int16
	version  int16
	corr     int32
	clientID string // aliases the request frame; copy before keeping
}

// request is one decoded request.
type request struct {
	header
	kreq kmsg.Request
}

// result is what a handler answers.
type result struct {
	// resp is the response; nil means no response (acks=0 produce).
	resp kmsg.Response
	// pins are released once resp is on the wire (fetched batches).
	pins []engine.Releaser
	// closeConn closes the connection once the responses before this one
	// are written (an acks=0 produce that failed, so the client notices).
	closeConn bool
	// bulk is how many bytes of record data resp carries (fetched
	// batches), so the writer sizes its buffer once instead of growing it
	// copy by copy through the encoding.
	bulk int
	// spliced are records resp carries as placeholders, sent from where
	// they are by a vectored write (splice.go).
	spliced [][][]byte
}

// later finishes a request whose answer must wait (a parked fetch, acks=all
// once replication exists). It runs on its own goroutine; ctx is cancelled
// when the connection ends or the broker shuts down, and later must then
// return promptly.
type later func(ctx context.Context) result

// slot is one response position in a connection's queue. Responses are
// written in the order of the slots, which is the order of the requests.
type slot struct {
	hdr      header
	flexible bool // response header v1 (tagged fields)
	done     chan struct{}
	res      result
	frame    *buffer // the request frame, kept until the request is done
}

// conn serves one client connection with two goroutines: the reader reads
// a frame, decodes it and runs its handler, in request order (so appends of
// pipelined produce requests happen in the order they were sent); the
// writer writes the responses in the same order. A handler that must wait
// returns a later, which completes its slot on its own goroutine while the
// reader goes on with the next request.
type conn struct {
	b      *Broker
	self   coordination.Broker // this broker as the client's listener advertises it
	nc     net.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan *slot
	// stop asks the reader to stop before its next request; set before
	// the read deadline is cut short, checked after the reader sets its
	// own deadline, so neither overrides the other.
	stop atomic.Bool
}

func newConn(b *Broker, nc net.Conn, self coordination.Broker) *conn {
	ctx, cancel := context.WithCancel(b.serveCtx)
	return &conn{
		b:      b,
		self:   self,
		nc:     nc,
		log:    b.log.With("remote", nc.RemoteAddr().String()),
		ctx:    ctx,
		cancel: cancel,
		queue:  make(chan *slot, maxInFlight),
	}
}

// serve runs the connection until it ends.
func (c *conn) serve() {
	defer c.b.removeConn(c)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	// The reader stopped (EOF, bad input, shutdown): wake parked requests,
	// let the writer drain what is queued, then close.
	c.cancel()
	close(c.queue)
	<-writerDone
	c.nc.Close()
}

// stopReading makes the reader stop before its next request (graceful
// shutdown); requests already read are answered.
func (c *conn) stopReading() {
	c.stop.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) readLoop() {
	br := bufio.NewReaderSize(c.nc, 4096)
	var sizeBuf [4]byte
	idle := c.b.cfg.ConnectionsMaxIdleMs
	for {
		if idle > 0 && idle < 100*365*24*time.Hour && br.Buffered() == 0 {
			// connections.max.idle.ms: a client that sends nothing (or
			// half a request) for this long is disconnected.
			c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		if c.stop.Load() {
			return
		}
		if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
				c.log.Debug("read", "err", err)
			}
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < minRequestSize || size > c.b.cfg.SocketRequestMaxBytes {
			c.log.Warn("closing connection: request size out of range", "size", size, "socket.request.max.bytes", c.b.cfg.SocketRequestMaxBytes)
			return
		}
		frame := getBuffer(int(size))
		if _, err := io.ReadFull(br, frame.b); err != nil {
			putBuffer(frame)
			c.log.Debug("closing connection: truncated request", "err", err)
			return
		}
		if !c.handle(frame) {
			return
		}
	}
}

// handle decodes and runs one request. It returns false when the
// connection must close (bad input, a handler panic, a failed acks=0
// produce).
func (c *conn) handle(frame *buffer) (keepOpen bool) {
	r := kbin.Reader{Src: frame.b}
	var h header
	h.key = r.Int16()
	h.version = r.Int16()
	h.corr = r.Int32()
	if cid := r.UnsafeNullableString(); cid != nil {
		h.clientID = *cid
	}
	kreq := kmsg.RequestForKey(h.key)
	if kreq == nil {
		putBuffer(frame)
		c.log.Warn("closing connection: unknown api key", "key", h.key)
		return false
	}
	kreq.SetVersion(h.version)
	flexible := kreq.IsFlexible()
	if flexible {
		skipTags(&r)
	}
	if !r.Ok() {
		putBuffer(frame)
		c.log.Warn("closing connection: malformed request header")
		return false
	}
	s := &slot{hdr: h, flexible: flexible && h.key != apiVersionsKey, done: make(chan struct{}), frame: frame}

	a := apiFor(h.key)
	if a == nil || h.version < a.min || h.version > a.max {
		if h.key == apiVersionsKey {
			// Answered in a v0 body listing our versions, so the client
			// can retry at one we serve.
			s.res = result{resp: unsupportedAPIVersions()}
			close(s.done)
			c.queue <- s
			return true
		}
		putBuffer(frame)
		c.log.Warn("closing connection: unsupported request", "api", kmsg.NameForKey(h.key), "version", h.version)
		return false
	}
	if err := kreq.ReadFrom(r.Src); err != nil {
		putBuffer(frame)
		c.log.Warn("closing connection: malformed request", "api", kmsg.NameForKey(h.key), "version", h.version, "err", err)
		return false
	}

	req := &request{header: h, kreq: kreq}
	res, wait, ok := c.call(a, req)
	if !ok {
		putBuffer(frame)
		return false
	}
	if wait == nil {
		s.res = res
		close(s.done)
		if res.resp == nil && !res.closeConn {
			putBuffer(frame) // acks=0: no response, no slot
			return true
		}
		c.queue <- s
		return !res.closeConn
	}
	c.queue <- s
	go c.finish(s, req, wait)
	return true
}

// call runs a handler, recovering a panic as the last line of defence: the
// connection closes, the broker goes on.
func (c *conn) call(a *api, req *request) (res result, wait later, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panicked; closing connection", "api", kmsg.NameForKey(req.key), "version", req.version,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	if hook := testHookHandler.Load(); hook != nil {
		(*hook)(req.key)
	}
	res, wait = a.handle(c.ctx, c, req)
	return res, wait, true
}

// testHookHandler, if set, is called before every handler (tests).
var testHookHandler atomic.Pointer[func(key int16)]

// finish runs a later and completes its slot.
func (c *conn) finish(s *slot, req *request, wait later) {
	defer close(s.done)
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("handler panicked; closing connection", "api", kmsg.NameForKey(req.key), "version", req.version,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			s.res = result{closeConn: true}
			c.stopReading()
		}
	}()
	s.res = wait(c.ctx)
}

// writeLoop writes the responses in slot order. After a write error or a
// closeConn result it only drains the queue, releasing what each request
// holds, until the reader closes the queue.
func (c *conn) writeLoop() {
	out := getBuffer(4096)
	// out is replaced below as responses need; the one held at the end is
	// the one to return (each buffer goes back to its pool exactly once:
	// a buffer pooled twice would be handed to two owners).
	defer func() { putBuffer(out) }()
	// A large buffer (a fetch's) is kept while responses keep coming, so a
	// consumer's fetches reuse it instead of getting a fresh one each time
	// (the pool loses it at every GC, and a fresh one is cleared and
	// faulted in); it goes back once the connection has been quiet for
	// bufferIdle.
	idle := time.NewTimer(bufferIdle)
	defer idle.Stop()
	failed := false
	for {
		s, ok := c.next(idle, &out)
		if !ok {
			return
		}
		<-s.done
		if !failed && s.res.closeConn {
			failed = true
			c.stopReading()
		}
		if !failed && s.res.resp != nil {
			// Headers, names and per-partition fields of even a
			// thousand-partition response fit in the slack.
			if need := s.res.bulk + 64<<10; cap(out.b) < need {
				putBuffer(out)
				out = getBuffer(need)
			}
			out.b = appendResponse(out.b[:0], s)
			if err := c.write(out.b, s); err != nil {
				c.log.Debug("write", "err", err)
				failed = true
				c.stopReading()
			}
		}
		for _, pin := range s.res.pins {
			pin.Release()
		}
		putBuffer(s.frame)
	}
}

// write sends the encoded response frame enc of s: as it is, or with its
// spliced records in place of their placeholders (one vectored write).
func (c *conn) write(enc []byte, s *slot) error {
	if len(s.res.spliced) == 0 {
		_, err := c.nc.Write(enc)
		return err
	}
	bufs, ok := splice(enc, s.res.resp.IsFlexible(), s.res.spliced)
	if !ok {
		// Only a change in kmsg's encoding could bring this here.
		return fmt.Errorf("fetch response placeholders not found in the encoding (%s v%d)",
			kmsg.NameForKey(s.hdr.key), s.hdr.version)
	}
	_, err := bufs.WriteTo(c.nc)
	return err
}

// bufferIdle is how long a connection's writer keeps a large response
// buffer with nothing to write.
const bufferIdle = time.Second

// next waits for the next slot. While it waits with a large buffer in
// *out, it swaps the buffer for a small one after bufferIdle.
func (c *conn) next(idle *time.Timer, out **buffer) (*slot, bool) {
	select {
	case s, ok := <-c.queue:
		return s, ok
	default:
	}
	if cap((*out).b) <= 1<<20 {
		s, ok := <-c.queue
		return s, ok
	}
	idle.Reset(bufferIdle)
	select {
	case s, ok := <-c.queue:
		idle.Stop()
		return s, ok
	case <-idle.C:
		putBuffer(*out)
		*out = getBuffer(4096)
		s, ok := <-c.queue
		return s, ok
	}
}

// appendResponse appends the size-prefixed response frame of s to dst.
func appendResponse(dst []byte, s *slot) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, s.hdr.corr)
	if s.flexible {
		dst = append(dst, 0) // response header v1: no tagged fields
	}
	dst = s.res.resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// skipTags skips a tagged-field section (KIP-482) of a flexible header.
func skipTags(r *kbin.Reader) {
	n := r.Uvarint()
	for i := uint32(0); i < n && r.Ok(); i++ {
		r.Uvarint() // tag
		size := r.Uvarint()
		r.Span(int(size))
	}
}
