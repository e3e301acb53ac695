package bench

// The JSON workloads store what most topics hold: structured application
// logs, one JSON object a record, about 300 bytes each, in uncompressed
// batches of about 16 KiB (batch.size). The lines come from a seeded
// generator, so every run and every engine stores the same bytes. The mix
// is that of a fleet of services: repeated keys, a dozen services of four
// hosts each, message templates with variable fields, timestamps
// milliseconds apart, and the high-entropy fields real logs carry (random
// trace and span ids, user ids, latencies), which bound how far any
// compressor can shrink them.

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
)

var (
	jsonServices = []string{"checkout", "cart", "payments", "search", "inventory", "auth", "gateway",
		"shipping", "recommendations", "notifications", "users", "pricing"}
	jsonRoutes = []string{"/api/v1/cart", "/api/v1/cart/items", "/api/v1/checkout", "/api/v2/search",
		"/api/v1/orders", "/api/v1/users/me", "/api/v1/payments/authorize", "/healthz", "/api/v1/inventory/reserve",
		"/api/v1/shipping/quote", "/api/v1/recommendations", "/api/v1/prices"}
	jsonMethods = []string{"GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"}
	jsonTables  = []string{"orders", "order_items", "users", "sessions", "carts", "products", "stock", "payments"}
	jsonWords   = []string{"request", "completed", "cache", "miss", "hit", "upstream", "timeout", "retrying",
		"connection", "pool", "exhausted", "user", "session", "expired", "token", "refreshed", "order",
		"created", "payment", "authorized", "declined", "inventory", "reserved", "released", "query",
		"slow", "rows", "scanned", "rate", "limit", "exceeded", "circuit", "breaker", "open", "closed"}
)

// jsonLogs generates the lines, deterministically from its seed.
type jsonLogs struct {
	rng *rand.Rand
	ms  int64 // the clock of the last line, milliseconds since the epoch
	buf []byte
}

func newJSONLogs(seed uint64) *jsonLogs {
	return &jsonLogs{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ms:  time.Date(2026, 11, 25, 14, 3, 7, 123e6, time.UTC).UnixMilli(),
	}
}

// line returns the next line and its timestamp; the bytes are valid until
// the next call.
func (g *jsonLogs) line() ([]byte, int64) {
	r := g.rng
	g.ms += int64(r.IntN(4)) // a busy fleet: several lines a millisecond
	b := g.buf[:0]
	b = append(b, `{"ts":"`...)
	b = time.UnixMilli(g.ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	level := "info"
	switch n := r.IntN(100); {
	case n < 12:
		level = "debug"
	case n < 90:
	case n < 97:
		level = "warn"
	default:
		level = "error"
	}
	svc := r.IntN(len(jsonServices))
	b = append(b, `","level":"`...)
	b = append(b, level...)
	b = append(b, `","service":"`...)
	b = append(b, jsonServices[svc]...)
	b = append(b, `","host":"`...)
	b = append(b, jsonServices[svc][:3]...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(svc*4+r.IntN(4)+1), 10)
	b = append(b, `","trace_id":"`...)
	b = appendHex(b, r.Uint64())
	b = appendHex(b, r.Uint64())
	b = append(b, `","span_id":"`...)
	b = appendHex(b, r.Uint64())
	b = append(b, `","msg":"`...)
	route := jsonRoutes[r.IntN(len(jsonRoutes))]
	latency := int64(math.Exp(r.NormFloat64()*0.9 + 3.2)) // log-normal, median about 25 ms
	status := 200
	switch n := r.IntN(100); {
	case n < 6:
		status = 201
	case n < 9:
		status = 404
	case n < 11:
		status = 400
	case n < 12:
		status = 500
	case n < 13:
		status = 503
	}
	switch r.IntN(6) {
	case 0, 1:
		b = append(b, jsonMethods[r.IntN(len(jsonMethods))]...)
		b = append(b, ' ')
		b = append(b, route...)
		b = append(b, " completed in "...)
		b = strconv.AppendInt(b, latency, 10)
		b = append(b, "ms"...)
	case 2:
		b = append(b, "slow query on "...)
		b = append(b, jsonTables[r.IntN(len(jsonTables))]...)
		b = append(b, ": "...)
		b = strconv.AppendInt(b, int64(r.IntN(50000)), 10)
		b = append(b, " rows scanned"...)
	case 3:
		b = append(b, "retrying call to "...)
		b = append(b, jsonServices[r.IntN(len(jsonServices))]...)
		b = append(b, " after "...)
		b = strconv.AppendInt(b, int64(50<<r.IntN(5)), 10)
		b = append(b, "ms (attempt "...)
		b = strconv.AppendInt(b, int64(1+r.IntN(3)), 10)
		b = append(b, ')')
	default:
		for i, n := 0, 4+r.IntN(8); i < n; i++ {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, jsonWords[r.IntN(len(jsonWords))]...)
		}
	}
	b = append(b, `","route":"`...)
	b = append(b, route...)
	b = append(b, `","latency_ms":`...)
	b = strconv.AppendInt(b, latency, 10)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"user_id":`...)
	b = strconv.AppendInt(b, int64(100000+r.IntN(900000)), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(r.IntN(64<<10)), 10)
	b = append(b, '}')
	g.buf = b
	return b, g.ms
}

func appendHex(b []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, digits[v>>uint(i)&0xf])
	}
	return b
}

// jsonBatch is one batch of the JSON fixture, offsets assigned.
type jsonBatch struct {
	bytes []byte
	meta  engine.BatchMeta
}

// jsonFixture is the JSON workload's log: batches from offset 0 holding
// logical bytes, and one small batch after them (tail).
type jsonFixture struct {
	batches []jsonBatch
	logical int
	tail    jsonBatch
}

// jsonFixtureOnce builds the fixture once per process: every engine is
// handed the same batches.
var jsonFixtureOnce = sync.OnceValue(func() *jsonFixture { return newJSONFixture(jsonFixtureSize, largeBatchBytes) })

// newJSONFixture generates batches of at most batchSize bytes until they
// hold size bytes.
func newJSONFixture(size, batchSize int) *jsonFixture {
	g := newJSONLogs(20261125)
	fx := &jsonFixture{}
	var (
		values [][]byte
		ts     []int64
		next   int64
		n      int
	)
	flush := func() jsonBatch {
		bt, m := enginetest.NewBatchOf(next, values, ts)
		next = m.LastOffset + 1
		values, ts, n = values[:0], ts[:0], engine.BatchHeaderSize
		return jsonBatch{bt, m}
	}
	n = engine.BatchHeaderSize
	for fx.logical < size {
		line, ms := g.line()
		if len(values) > 0 && n+len(line)+12 > batchSize {
			jb := flush()
			fx.batches = append(fx.batches, jb)
			fx.logical += len(jb.bytes)
		}
		values = append(values, append([]byte(nil), line...))
		ts = append(ts, ms)
		n += len(line) + 12
	}
	// The tail is the first line of the batch under way.
	values, ts = values[:1], ts[:1]
	fx.tail = flush()
	return fx
}
