package tiered

import (
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engines/segment"
)

var ctx = context.Background()

var tp = engine.TopicPartition{Topic: "t", Partition: 0}

// makeBatch returns a v2 batch of records records (one byte each is
// enough: engines never parse them) at base, with payload bytes of
// filler and max timestamp ts.
func makeBatch(base int64, records int32, payload int, ts int64, fill byte) (engine.BatchMeta, []byte) {
	b := make([]byte, engine.BatchHeaderSize+payload)
	be := binary.BigEndian
	be.PutUint64(b[0:], uint64(base))
	be.PutUint32(b[8:], uint32(len(b)-engine.BatchLengthOverhead))
	b[16] = 2
	be.PutUint32(b[23:], uint32(records-1))
	be.PutUint64(b[27:], uint64(ts))
	be.PutUint64(b[35:], uint64(ts))
	be.PutUint64(b[43:], ^uint64(0))
	be.PutUint32(b[57:], uint32(records))
	r := rand.New(rand.NewPCG(uint64(base), uint64(fill)))
	for i := engine.BatchHeaderSize; i < len(b); i++ {
		// Half random, half repeated: compressible, but not trivially.
		if i%2 == 0 {
			b[i] = byte(r.IntN(256))
		} else {
			b[i] = fill
		}
	}
	be.PutUint32(b[17:], engine.Checksum(b[engine.CRCStart:]))
	return engine.BatchMeta{BaseOffset: base, LastOffset: base + int64(records) - 1, MaxTimestamp: ts, RecordCount: records}, b
}

type appended struct {
	meta engine.BatchMeta
	data []byte
}

// fill appends n batches of about size bytes from the log's end.
func fill(t testing.TB, l engine.Log, n, size int) []appended {
	t.Helper()
	_, end := l.Offsets()
	var out []appended
	for i := range n {
		m, b := makeBatch(end, int32(1+i%5), size+(i*37)%200, 1_000_000+end, byte(i))
		if err := l.Append(ctx, m, b); err != nil {
			t.Fatalf("Append at %d: %v", end, err)
		}
		out = append(out, appended{m, b})
		end = m.LastOffset + 1
	}
	return out
}

func testOptions(fs engine.FS, settings map[string]string) engine.Options {
	o := engine.Options{
		FS:       fs,
		Logger:   slog.New(slog.DiscardHandler),
		Log:      engine.LogOptions{SegmentBytes: 32 << 10, IndexIntervalBytes: 512, SegmentIndexBytes: 16 << 10},
		Settings: map[string]string{SettingUploadIntervalMs: "0", SettingFrameBytes: "4KiB"},
	}
	for k, v := range settings {
		o.Settings[k] = v
	}
	return o
}

func openEngine(t testing.TB, dir string, opts engine.Options) *Engine {
	t.Helper()
	e, err := Open(ctx, dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return e
}

func openLog(t testing.TB, e *Engine, lo engine.LogOptions) *Log {
	t.Helper()
	l, err := e.OpenLog(ctx, tp, lo)
	if err != nil {
		t.Fatalf("OpenLog: %v", err)
	}
	return l.(*Log)
}

// readAll reads [from, end) with reads of maxBytes and returns the batches'
// bytes, checking each Read's result against the contract.
func readAll(t testing.TB, l engine.Log, from int64, maxBytes int) []byte {
	t.Helper()
	var out []byte
	_, end := l.Offsets()
	for from < end {
		recs, err := l.Read(ctx, from, maxBytes)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if recs.Empty() {
			t.Fatalf("Read(%d) of a log ending at %d returned nothing", from, end)
		}
		for i, c := range recs.Chunks {
			for p := 0; p < len(c); {
				h, err := engine.CheckBatch(c[p:])
				if err != nil {
					t.Fatalf("Read(%d): %v", from, err)
				}
				if i == 0 && p == 0 && (h.BaseOffset > from || h.LastOffset() < from) {
					t.Fatalf("Read(%d) begins with batch [%d, %d]", from, h.BaseOffset, h.LastOffset())
				}
				p += h.Size()
			}
			out = append(out, c...)
		}
		from = recs.NextOffset
		recs.Release()
	}
	return out
}

func concat(bs []appended) []byte {
	var b []byte
	for _, x := range bs {
		b = append(b, x.data...)
	}
	return b
}

// hotSegments lists the base offsets of the log files in tp's hot directory.
func hotSegments(t testing.TB, dir string) []int64 {
	t.Helper()
	ents, err := engine.OSFS.ReadDir(filepath.Join(dir, tp.String()))
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	for _, ent := range ents {
		if base, suffix, ok := segment.ParseFileName(ent.Name()); ok && suffix == segment.LogSuffix {
			bases = append(bases, base)
		}
	}
	return bases
}

// checkNoOrphans checks that the cold store holds exactly the manifest's
// objects, and that no hot segment file holds offsets the cold tier holds.
func checkNoOrphans(t testing.TB, dir string) {
	t.Helper()
	m, err := readManifest(engine.OSFS, filepath.Join(dir, tp.String()))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, c := range m.segs {
		want = append(want, objectName(tp, c))
	}
	cold, err := NewLocalDir(engine.OSFS, filepath.Join(dir, "cold"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := cold.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Name)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("cold objects %v, the manifest lists %v", got, want)
	}
	if len(m.segs) > 0 {
		coldEnd := m.segs[len(m.segs)-1].last + 1
		for _, b := range hotSegments(t, dir) {
			if b < coldEnd {
				t.Fatalf("hot segment at %d below the cold tier's end %d", b, coldEnd)
			}
		}
	}
}
