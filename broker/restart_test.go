package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRestartKeepsData(t *testing.T) {
	tb := startBroker(t)
	tb.createTopic("durable", 2, nil)
	p := tb.client(kgo.DefaultProduceTopic("durable"))
	ctx := testCtx(t)
	for i := range 50 {
		if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}, Partition: int32(i % 2)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	tb.restart()
	recs := consumeAll(t, tb, "durable", 50)
	if len(recs) != 50 {
		t.Fatalf("%d records after restart", len(recs))
	}
	p = tb.client(kgo.DefaultProduceTopic("durable"))
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("more")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}
