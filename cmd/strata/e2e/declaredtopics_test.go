package e2e

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The seed's start-up as a new user meets it: three brokers given
// KAFKA_CREATE_TOPICS, and a client asking for Topic1 (with
// auto-creation, as kafka-python's producer asks) from the moment the
// first broker serves. The topics end exactly as declared; until they
// exist the client is told LEADER_NOT_AVAILABLE, never handed a topic
// auto-created with the defaults.
func TestClusterDeclaredTopicsEarlyClient(t *testing.T) {
	t.Parallel()
	const topicsEnv = "KAFKA_CREATE_TOPICS=Topic1:3:2,Topic2:2:2"
	c := newCluster(t, "/strata")
	first := c.start(1, []string{topicsEnv}, false).Addr

	type answer struct {
		code       int16
		partitions int
	}
	var mu sync.Mutex
	var answers []answer
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for range 10000 { // bounded: the test stops it long before
			req := kmsg.NewPtrMetadataRequest()
			req.AllowAutoTopicCreation = true
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr("Topic1")
			req.Topics = append(req.Topics, rt)
			if resp, err := ask(first, req); err == nil {
				for _, t := range resp.(*kmsg.MetadataResponse).Topics {
					mu.Lock()
					answers = append(answers, answer{t.ErrorCode, len(t.Partitions)})
					mu.Unlock()
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	c.start(2, []string{topicsEnv}, false)
	c.start(3, []string{topicsEnv}, false)
	c.waitRegistered()
	view := c.waitMetadata(map[string]int{"Topic1": 3, "Topic2": 2})
	close(stop)
	<-done

	mu.Lock()
	defer mu.Unlock()
	if len(answers) == 0 || answers[0].code != kerr.LeaderNotAvailable.Code {
		t.Fatalf("the client's first answers %v; want LEADER_NOT_AVAILABLE first (the topic was not created yet)", answers)
	}
	for i, a := range answers {
		switch {
		case a.code == kerr.LeaderNotAvailable.Code && a.partitions == 0:
		case a.code == 0 && a.partitions == 3:
		default:
			t.Errorf("answer %d of %d: %v with %d partitions; want LEADER_NOT_AVAILABLE, then the declared 3 partitions", i, len(answers), kerr.ErrorForCode(a.code), a.partitions)
		}
	}
	for name, n := range map[string]int{"Topic1": 3, "Topic2": 2} {
		tv := view.Topics[name]
		if len(tv.Partitions) != n {
			t.Errorf("%s has %d partitions, declared %d", name, len(tv.Partitions), n)
		}
		for p, pv := range tv.Partitions {
			if len(pv.Replicas) != 2 {
				t.Errorf("%s/%d has replicas %v, declared 2", name, p, pv.Replicas)
			}
		}
	}
}

// A KAFKA_CREATE_TOPICS topic that already exists with another shape is
// left as it is, and the broker says so in its log.
func TestDeclaredTopicOtherShapeLogged(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "logs")
	b := startBroker(t, dir, []string{"KAFKA_CREATE_TOPICS=shape:1:1"})
	b.Stop()
	b = startBroker(t, dir, []string{"KAFKA_CREATE_TOPICS=shape:4:1:compact"})
	defer b.Stop()
	log := b.Log.String()
	want := `exists with another shape`
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, want) {
			for _, field := range []string{"topic=shape", "declared=shape:4:1:compact", `differs="1 partitions, no cleanup.policy override"`} {
				if !strings.Contains(line, field) {
					t.Errorf("the warning %q lacks %s", line, field)
				}
			}
			v, err := metadataOf(b.Addr, []string{"shape"})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(v.Topics["shape"].Partitions); got != 1 {
				t.Errorf("shape has %d partitions after the restart; want the existing 1", got)
			}
			return
		}
	}
	t.Fatalf("no log line says the topic %s; log:\n%s", want, tail(log, 40))
}
