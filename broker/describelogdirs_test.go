package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/broker/internal/batchtest"
)

func TestDescribeLogDirs(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("ld", 2, nil)
	tb.createTopic("ld-mem", 1, map[string]*string{"strata.engine": kmsg.StringPtr("mem")})
	cl := tb.client()
	produceRaw(t, tb, cl, "ld", 1, batchtest.Make(t, kgo.NoCompression(), 1, "some", "data"))
	produceRaw(t, tb, cl, "ld-mem", 0, batchtest.Make(t, kgo.NoCompression(), 1, "x"))
	adm := tb.admin()
	ctx := testCtx(t)

	all, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs := all[tb.coord.BrokerID()]
	d, ok := dirs[tb.cfg.LogDirs[0]]
	if !ok || d.Err != nil || len(dirs) != 1 {
		t.Fatalf("dirs: %+v", dirs)
	}
	if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
		t.Fatalf("volume: total %d usable %d", d.TotalBytes, d.UsableBytes)
	}
	p1, ok1 := d.Topics.Lookup("ld", 1)
	p0, ok0 := d.Topics.Lookup("ld", 0)
	pm, okm := d.Topics.Lookup("ld-mem", 0)
	if !ok0 || !ok1 || !okm || p1.Size <= p0.Size || pm.Size != int64(len(batchtest.Make(t, kgo.NoCompression(), 1, "x"))) {
		t.Fatalf("partitions: %+v %+v %+v", p0, p1, pm)
	}

	// Only what is asked for.
	some, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{"ld": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	got := some[tb.coord.BrokerID()][tb.cfg.LogDirs[0]].Topics
	if _, ok := got.Lookup("ld", 1); !ok || len(got) != 1 || len(got["ld"]) != 1 {
		t.Fatalf("filtered: %+v", got)
	}
	for v := int16(0); v <= 4; v++ {
		resp := tb.request(tb.pinned(35, v), kmsg.NewPtrDescribeLogDirsRequest()).(*kmsg.DescribeLogDirsResponse)
		// ld, ld-mem and the internal __consumer_offsets.
		if resp.ErrorCode != 0 || len(resp.Dirs) != 1 || len(resp.Dirs[0].Topics) != 3 {
			t.Fatalf("v%d: %+v", v, resp)
		}
	}
}
