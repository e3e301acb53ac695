package mem_test

import (
	"context"
	"testing"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/enginetest"
	"github.com/strata-broker/strata/engines/mem"
)

func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		Open: func(dir string, opts engine.Options) (engine.Engine, error) {
			return mem.Open(context.Background(), dir, opts)
		},
		TearTail: mem.TearTail,
		// The volumes live in process memory: a killed child process
		// takes them along, so recovery is checked through TearTail.
		Durable:    false,
		FailWrites: func(e engine.Engine) { e.(*mem.Engine).SetFailWrites(true) },
		HealWrites: func(e engine.Engine) { e.(*mem.Engine).SetFailWrites(false) },
	})
}

// TestVolume checks what the suite cannot: mem registers itself, a volume
// takes one engine at a time, and TearTail refuses while it is open.
func TestVolume(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := engine.Open(ctx, "mem", dir, engine.Options{})
	if err != nil {
		t.Fatalf("engine.Open(mem): %v", err)
	}
	if _, err := mem.Open(ctx, dir+"/", engine.Options{}); err == nil {
		t.Fatal("a second engine opened on a volume in use")
	}
	tp := engine.TopicPartition{Topic: "t", Partition: 0}
	l, err := e.OpenLog(ctx, tp, engine.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, meta := enginetest.NewBatch(0, 1, 10, 0, 0)
	if err := l.Append(ctx, meta, b); err != nil {
		t.Fatal(err)
	}
	if err := mem.TearTail(dir, tp, func(b []byte) []byte { return nil }); err == nil {
		t.Fatal("TearTail succeeded while an engine is open on the volume")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = mem.Open(ctx, dir, engine.Options{})
	if err != nil {
		t.Fatalf("reopening the volume after Close: %v", err)
	}
	defer e.Close()
	if tps, err := e.Logs(ctx); err != nil || len(tps) != 1 || tps[0] != tp {
		t.Fatalf("Logs() = %v, %v; want [%v]", tps, err, tp)
	}
}
