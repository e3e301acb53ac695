package broker

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
)

// expectClosed reads from c until the broker closes it, failing if it
// answers anything or stays open.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after bad input")
	}
	if n != 0 {
		t.Fatalf("broker answered %d bytes to bad input", n)
	}
}

// requestFrame encodes a request with a v1 header (v2 when flexible).
func requestFrame(req kmsg.Request, corr int32) []byte {
	b := kbin.AppendInt16(nil, req.Key())
	b = kbin.AppendInt16(b, req.GetVersion())
	b = kbin.AppendInt32(b, corr)
	b = kbin.AppendNullableString(b, kmsg.StringPtr("raw"))
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("steady", 1, nil)
	p := tb.client(kgo.DefaultProduceTopic("steady"))
	ctx := testCtx(t)
	produced := 0
	produce := func() {
		t.Helper()
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("ok")}).FirstErr(); err != nil {
			t.Fatalf("producer on another connection: %v", err)
		}
		produced++
	}
	produce()

	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	good := requestFrame(meta, 1)
	unknownKey := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(unknownKey, 999)
	badVersion := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(badVersion[2:], 99)

	for name, send := range map[string]func(c net.Conn) error{
		"oversized frame": func(c net.Conn) error {
			_, err := c.Write([]byte{0x7f, 0xff, 0xff, 0xff})
			return err
		},
		"negative frame size": func(c net.Conn) error {
			_, err := c.Write([]byte{0xff, 0xff, 0xff, 0xf0})
			return err
		},
		"frame shorter than a header": func(c net.Conn) error { return writeFrame(c, []byte{0, 3, 0}) },
		"garbage":                     func(c net.Conn) error { return writeFrame(c, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")) },
		"unknown api key":             func(c net.Conn) error { return writeFrame(c, unknownKey) },
		"unsupported version":         func(c net.Conn) error { return writeFrame(c, badVersion) },
		"truncated body":              func(c net.Conn) error { return writeFrame(c, good[:len(good)-3]) },
		"truncated frame": func(c net.Conn) error {
			var size [4]byte
			binary.BigEndian.PutUint32(size[:], uint32(len(good)+100))
			if _, err := c.Write(append(size[:], good...)); err != nil {
				return err
			}
			return c.(*net.TCPConn).CloseWrite()
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", tb.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := send(c); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, c)
			produce()
		})
	}

	// A good request on a raw connection is answered, in order, even
	// when pipelined.
	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for corr := int32(1); corr <= 5; corr++ {
		if err := writeFrame(c, requestFrame(meta, corr)); err != nil {
			t.Fatal(err)
		}
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for corr := int32(1); corr <= 5; corr++ {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, body); err != nil {
			t.Fatal(err)
		}
		if got := int32(binary.BigEndian.Uint32(body)); got != corr {
			t.Fatalf("response %d has correlation id %d", corr, got)
		}
		resp := kmsg.NewPtrMetadataResponse()
		resp.Version = 12
		if err := resp.ReadFrom(body[5:]); err != nil { // header v1: corr id + empty tags
			t.Fatalf("decoding response: %v", err)
		}
	}
	if _, end := tb.logOffsets("steady", 0); end != int64(produced) {
		t.Fatalf("log end %d, produced %d", end, produced)
	}
}

func TestAPIVersionsUnsupportedVersion(t *testing.T) {
	tb := startBroker(t)
	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 9
	if err := writeFrame(c, requestFrame(req, 42)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 42 {
		t.Fatalf("correlation id %d", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body[4:]); err != nil { // header v0
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) != len(apis) {
		t.Fatalf("error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
}

// TestAcksZero: no response at all, and the records land.
func TestAcksZero(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("fire", 1, nil)
	c, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewPtrProduceRequest()
	req.Version = 9
	req.Acks = 0
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "fire"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batchtest.Make(t, kgo.NoCompression(), 1, "x")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	meta := kmsg.NewPtrMetadataRequest()
	meta.Version = 12
	meta.Topics = []kmsg.MetadataRequestTopic{}
	// The produce gets no response: the first response is the metadata's.
	if err := writeFrame(c, requestFrame(req, 1)); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(c, requestFrame(meta, 2)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != 2 {
		t.Fatalf("first response has correlation id %d, want 2", corr)
	}
	if _, end := tb.logOffsets("fire", 0); end != 1 {
		t.Fatalf("log end %d", end)
	}
}
