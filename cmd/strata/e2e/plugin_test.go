package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine/enginetest"
)

// The tests of engine plugins run the example plugin plugins/examples/builtin
// (builtinBin, built by TestMain), which serves the mmap engine out of
// process, as the broker's child.

// TestPluginTopic: with strata.plugins.ext.path naming the builtin plugin, a
// topic created with strata.engine=plugin:ext keeps its logs in the
// plugin's directory <log dir>/plugin-ext, next to a topic on the default
// engine; both read back exactly what was produced, DescribeConfigs shows
// the topic's engine, and everything survives a clean restart (with the
// plugin process gone once the broker stopped). A client cannot make the
// broker run a program: strata.engine=plugin:<undeclared name> and
// plugin:/bin/sh are INVALID_CONFIG and create nothing.
func TestPluginTopic(t *testing.T) {
	t.Parallel()
	const (
		partitions = 3
		records    = 3000
	)
	dir := t.TempDir()
	overrides := []string{"strata.plugins.ext.path=" + builtinBin}
	b := startBroker(t, dir, nil, overrides...)
	adm := newAdmin(t, b.Addr)

	createTopic(t, adm, "plug", partitions, map[string]*string{"strata.engine": kadm.StringPtr("plugin:ext")})
	createTopic(t, adm, "native", partitions, nil)

	// A client names a declared plugin or nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, v := range []string{"plugin:undeclared", "plugin:/bin/sh"} {
		topic := fmt.Sprintf("evil%d", i)
		_, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"strata.engine": kadm.StringPtr(v)}, topic)
		if !errors.Is(err, kerr.InvalidConfig) {
			t.Errorf("CreateTopics %s with strata.engine=%s: %v, want INVALID_CONFIG", topic, v, err)
		}
	}
	all, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	for _, topic := range []string{"evil0", "evil1"} {
		if all.Has(topic) {
			t.Errorf("topic %s exists after its CreateTopics failed", topic)
		}
	}

	wantPlug := produceSeq(t, b.Addr, "plug", partitions, 0, records, nil)
	wantNative := produceSeq(t, b.Addr, "native", partitions, 0, records, nil)
	checkExact(t, "plug", consumeAll(t, b.Addr, "plug", partitions), wantPlug)
	checkExact(t, "native", consumeAll(t, b.Addr, "native", partitions), wantNative)

	// Where the data is: plug's logs in the plugin's directory, native's
	// not; plug's not in the default engine's.
	pluginDir := filepath.Join(dir, "plugin-ext")
	checkLogsUnder(t, pluginDir, "plug", partitions)
	if found := logDirsUnder(pluginDir, "native"); len(found) > 0 {
		t.Errorf("native (default engine) has logs in the plugin's directory: %v", found)
	}
	if found := logDirsUnder(filepath.Join(dir, "mmap"), "plug"); len(found) > 0 {
		t.Errorf("plug (strata.engine=plugin:ext) has logs in the mmap engine's directory: %v", found)
	}

	if v, ok := topicConfig(t, adm, "plug", "strata.engine"); !ok || v != "plugin:ext" {
		t.Errorf("DescribeConfigs plug: strata.engine=%q (present %v), want plugin:ext", v, ok)
	}
	if v, ok := topicConfig(t, adm, "native", "strata.engine"); ok && strings.HasPrefix(v, "plugin:") {
		t.Errorf("DescribeConfigs native: strata.engine=%q, want the default engine", v)
	}

	pids := waitPluginPIDs(t, b, nil)
	t.Logf("plugin process %v, %d records a topic", pids, records)
	b.Stop()
	for _, pid := range pids {
		waitFor(t, 10*time.Second, fmt.Sprintf("plugin process %d to be gone after the broker stopped", pid),
			func() bool { return processGone(pid) })
	}

	// The same dirs: everything is still there, and the plugin topic takes
	// more.
	b = startBroker(t, dir, nil, overrides...)
	checkExact(t, "plug", consumeAll(t, b.Addr, "plug", partitions), wantPlug)
	checkExact(t, "native", consumeAll(t, b.Addr, "native", partitions), wantNative)
	wantPlug = produceSeq(t, b.Addr, "plug", partitions, records, 300, wantPlug)
	checkExact(t, "plug", consumeAll(t, b.Addr, "plug", partitions), wantPlug)
	b.Stop()
}

// TestPluginDefaultEngine: log.engine=plugin:<path> makes the plugin the
// broker's default engine: a topic created without configs keeps its logs
// in <log dir>/plugin-builtin (the program's base name) and reads back
// what was produced.
func TestPluginDefaultEngine(t *testing.T) {
	t.Parallel()
	const partitions = 2
	dir := t.TempDir()
	b := startBroker(t, dir, nil, "log.engine=plugin:"+builtinBin)
	adm := newAdmin(t, b.Addr)
	createTopic(t, adm, "dflt", partitions, nil)
	want := produceSeq(t, b.Addr, "dflt", partitions, 0, 1000, nil)
	checkExact(t, "dflt", consumeAll(t, b.Addr, "dflt", partitions), want)
	checkLogsUnder(t, filepath.Join(dir, "plugin-builtin"), "dflt", partitions)
	if found := logDirsUnder(filepath.Join(dir, "mmap"), "dflt"); len(found) > 0 {
		t.Errorf("dflt has logs in the mmap engine's directory: %v", found)
	}
	waitPluginPIDs(t, b, nil)
	b.Stop()
}

// TestPluginKilledDuringProduce: while franz-go idempotent producers
// (acks=all) write sequenced records to a topic on the builtin plugin (plug)
// and one on the default engine (native), the plugin process is SIGKILLed,
// three times. Each time: the broker stays up; a raw Produce to plug
// answers KAFKA_STORAGE_ERROR while the plugin is down, and a raw Fetch
// too, while native in the same Produce request is appended; the native
// producer keeps being acknowledged all through the down window; the broker
// logs "plugin exited; restarting" (error) and then "plugin restarted"
// (info), a new plugin process appears, and plug takes produces again.
// At the end both topics hold every acknowledged record exactly once, at
// the offset it was acknowledged with, in order per partition, and nothing
// that was not produced.
func TestPluginKilledDuringProduce(t *testing.T) {
	t.Parallel()
	const (
		partitions = 3
		kills      = 3
		backoff    = 2 * time.Second // strata.plugin.restart.backoff.ms: the down window lasts at least this
		maxGap     = time.Second     // the longest native may go unacknowledged while plug is down
		progress   = 200             // plug acknowledgements between kills, so each kill is mid-traffic
	)
	dir := t.TempDir()
	b := startBroker(t, dir, nil,
		"strata.plugins.ext.path="+builtinBin,
		fmt.Sprintf("strata.plugin.restart.backoff.ms=%d", backoff.Milliseconds()))
	adm := newAdmin(t, b.Addr)
	createTopic(t, adm, "plug", partitions, map[string]*string{"strata.engine": kadm.StringPtr("plugin:ext")})
	createTopic(t, adm, "native", partitions, nil)

	pid := onePluginPID(t, b, nil)
	pr := newProber(t, b.Addr, adm)
	if res := pr.produce(t); res.plug != 0 || res.native != 0 {
		t.Fatalf("raw Produce before any kill: plug %d, native %d (%v), want 0", res.plug, res.native, res.err)
	}
	if code := pr.fetch(t); code != 0 {
		t.Fatalf("raw Fetch from plug before any kill: %d, want 0", code)
	}

	plug := startSeqProducer(t, b.Addr, "plug", partitions)
	native := startSeqProducer(t, b.Addr, "native", partitions)
	waitFor(t, 30*time.Second, "the first 300 acknowledgements of each producer", func() bool {
		return plug.acks() >= 300 && native.acks() >= 300
	})

	for k := 1; k <= kills; k++ {
		base := plug.acks()
		waitFor(t, 30*time.Second, fmt.Sprintf("%d more plug acknowledgements before kill %d", progress, k), func() bool {
			return plug.acks() >= base+progress
		})
		events := len(pluginEvents(b.Log.String()))
		killAt := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: SIGKILL plugin process %d: %v", k, pid, err)
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("plugin process %d to die", pid), func() bool { return processGone(pid) })

		// While it is down: plug answers KAFKA_STORAGE_ERROR, native in
		// the same request is appended.
		var saw56Produce, saw56Fetch bool
		deadline := time.Now().Add(backoff)
		for n := 0; !(saw56Produce && saw56Fetch) && (n < 10 || time.Now().Before(deadline)); n++ {
			res := pr.produce(t)
			if res.plug == kerr.KafkaStorageError.Code {
				saw56Produce = true
				if res.native != 0 {
					t.Errorf("kill %d: raw Produce while the plugin is down: native answered %d, want 0 (only plug is down)", k, res.native)
				}
			}
			if code := pr.fetch(t); code == kerr.KafkaStorageError.Code {
				saw56Fetch = true
			}
			pause(20 * time.Millisecond)
		}
		if !saw56Produce {
			t.Errorf("kill %d: a raw Produce to plug never answered KAFKA_STORAGE_ERROR (56) while the plugin was down", k)
		}
		if !saw56Fetch {
			t.Errorf("kill %d: a raw Fetch from plug never answered KAFKA_STORAGE_ERROR (56) while the plugin was down", k)
		}
		if !b.Running() {
			t.Fatalf("kill %d: the broker exited when its plugin died: %v", k, b.err)
		}

		waitFor(t, 30*time.Second, fmt.Sprintf("kill %d: the log lines %q then %q", k, msgPluginExited, msgPluginRestarted), func() bool {
			evs := pluginEvents(b.Log.String())[events:]
			i := slices.Index(evs, msgPluginExited)
			return i >= 0 && slices.Contains(evs[i+1:], msgPluginRestarted)
		})
		restartedAt := time.Now()
		if down := restartedAt.Sub(killAt); down < backoff {
			t.Errorf("kill %d: the plugin was restarted %v after the kill, before strata.plugin.restart.backoff.ms=%d", k, down, backoff.Milliseconds())
		}
		newPID := onePluginPID(t, b, []int{pid})
		waitFor(t, 30*time.Second, fmt.Sprintf("kill %d: a raw Produce to plug to succeed after the restart", k), func() bool {
			return pr.produce(t).plug == 0
		})
		n, gap := ackGap(native.ackTimes(), killAt, restartedAt)
		if n == 0 || gap > maxGap {
			t.Errorf("kill %d: native got %d acknowledgements in the %v the plugin was down, the longest gap %v (want at most %v)",
				k, n, restartedAt.Sub(killAt).Round(time.Millisecond), gap.Round(time.Millisecond), maxGap)
		}
		t.Logf("kill %d: plugin %d killed, %d restarted after %v; native acknowledged %d records meanwhile (longest gap %v)",
			k, pid, newPID, restartedAt.Sub(killAt).Round(time.Millisecond), n, gap.Round(time.Millisecond))
		pid = newPID
	}
	base := plug.acks()
	waitFor(t, 30*time.Second, "plug acknowledgements after the last restart", func() bool {
		return plug.acks() >= base+progress
	})

	plug.finish(t)
	native.finish(t)
	if !b.Running() {
		t.Fatalf("the broker exited: %v", b.err)
	}
	for _, p := range []*seqProducer{plug, native} {
		p.mu.Lock()
		if len(p.errs) > 0 {
			t.Errorf("%s: %d records failed, first: %v", p.topic, len(p.errs), p.errs[0])
		}
		if p.dataLoss > 0 {
			t.Errorf("%s: the broker answered OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID %d times (it forgot the producer's state)", p.topic, p.dataLoss)
		}
		p.mu.Unlock()
	}
	checkSequenced(t, plug, consumeAll(t, b.Addr, "plug", partitions), pr.sent["plug"])
	checkSequenced(t, native, consumeAll(t, b.Addr, "native", partitions), pr.sent["native"])
	if strings.Contains(b.Log.String(), "panic") {
		t.Errorf("the broker log mentions a panic")
	}
	b.Stop()
}

// Log messages of the plugin supervisor.
const (
	msgPluginExited    = "plugin exited; restarting"
	msgPluginRestarted = "plugin restarted"
)

// pluginEvents returns the supervisor's log lines in order, each as its
// message: msgPluginExited at level ERROR, msgPluginRestarted at INFO.
func pluginEvents(log string) []string {
	var evs []string
	for _, line := range strings.Split(log, "\n") {
		level, msg := logLevelMsg(line)
		switch {
		case msg == msgPluginExited && level == "ERROR",
			msg == msgPluginRestarted && level == "INFO":
			evs = append(evs, msg)
		}
	}
	return evs
}

// logLevelMsg returns the level and message of a slog line, text
// (level=INFO msg="...") or JSON.
func logLevelMsg(line string) (level, msg string) {
	if strings.HasPrefix(line, "{") {
		var l struct{ Level, Msg string }
		if json.Unmarshal([]byte(line), &l) != nil {
			return "", ""
		}
		return l.Level, l.Msg
	}
	i := strings.Index(line, " msg=")
	if i < 0 {
		return "", ""
	}
	rest := line[i+len(" msg="):]
	if q, err := strconv.QuotedPrefix(rest); err == nil {
		msg, _ = strconv.Unquote(q)
	} else {
		msg, _, _ = strings.Cut(rest, " ")
	}
	return logField(line, "level"), msg
}

// waitFor polls cond every 20ms until it holds, failing the test if it
// does not within timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		pause(20 * time.Millisecond)
	}
}

// pause waits d between two polls.
func pause(d time.Duration) {
	tm := time.NewTimer(d)
	<-tm.C
}

func newAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, 1, configs, topic); err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
}

// topicConfig returns the value DescribeConfigs gives key on topic.
func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) (string, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatalf("DescribeConfigs %s: %v", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeConfigs %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == key && c.Value != nil {
			return *c.Value, true
		}
	}
	return "", false
}

// produceSeq produces n records to topic's partitions round robin, from
// sequence number start on, values "<topic>-p<partition>-<seq>", and waits
// for all of them. It returns want with the values appended to their
// partition's (nil: a new want).
func produceSeq(t *testing.T, addr, topic string, partitions, start, n int, want [][]string) [][]string {
	t.Helper()
	if want == nil {
		want = make([][]string, partitions)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rs := make([]*kgo.Record, 0, n)
	for i := start; i < start+n; i++ {
		p := i % partitions
		v := fmt.Sprintf("%s-p%d-%06d", topic, p, i/partitions)
		rs = append(rs, &kgo.Record{Partition: int32(p), Value: []byte(v)})
		want[p] = append(want[p], v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	return want
}

// checkExact checks that each partition holds exactly want's values, at
// offsets 0, 1, ...
func checkExact(t *testing.T, topic string, got [][]*kgo.Record, want [][]string) {
	t.Helper()
	for p := range want {
		if len(got[p]) != len(want[p]) {
			t.Errorf("%s/%d: %d records, want %d", topic, p, len(got[p]), len(want[p]))
		}
		for i, r := range got[p] {
			if i >= len(want[p]) || string(r.Value) != want[p][i] || r.Offset != int64(i) {
				w := "nothing"
				if i < len(want[p]) {
					w = strconv.Quote(want[p][i])
				}
				t.Fatalf("%s/%d: offset %d holds %q, want %s at offset %d", topic, p, r.Offset, r.Value, w, i)
			}
		}
	}
}

// logDirsUnder returns the directories named <topic>-<n> anywhere under
// root (none if root does not exist).
func logDirsUnder(root, topic string) []string {
	var found []string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if rest, ok := strings.CutPrefix(d.Name(), topic+"-"); ok {
			if _, err := strconv.Atoi(rest); err == nil {
				found = append(found, path)
			}
		}
		return nil
	})
	return found
}

// checkLogsUnder checks that root holds a log directory for each of
// topic's partitions with a non-empty .log segment file.
func checkLogsUnder(t *testing.T, root, topic string, partitions int) {
	t.Helper()
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("no plugin data directory %s: %v", root, err)
	}
	dirs := logDirsUnder(root, topic)
	for p := range partitions {
		name := fmt.Sprintf("%s-%d", topic, p)
		i := slices.IndexFunc(dirs, func(d string) bool { return filepath.Base(d) == name })
		if i < 0 {
			t.Errorf("no log directory %s under %s (found %v)", name, root, dirs)
			continue
		}
		ents, _ := os.ReadDir(dirs[i])
		var bytes int64
		for _, e := range ents {
			if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".log") {
				bytes += fi.Size()
			}
		}
		if bytes == 0 {
			t.Errorf("%s holds no data in .log files", dirs[i])
		}
	}
}

// childPIDs returns the children of process pid, from
// /proc/<pid>/task/*/children, or, if the kernel has no such files, from
// the parent pid of every process.
func childPIDs(pid int) []int {
	var kids []int
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if len(files) > 0 {
		for _, f := range files {
			data, _ := os.ReadFile(f)
			for _, s := range strings.Fields(string(data)) {
				if c, err := strconv.Atoi(s); err == nil {
					kids = append(kids, c)
				}
			}
		}
		return kids
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold anything but ')'
		// ends it last.
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		if c, err := strconv.Atoi(strings.Fields(s)[0]); err == nil {
			kids = append(kids, c)
		}
	}
	return kids
}

// pluginPIDs returns the live children of the broker that run builtinBin.
func pluginPIDs(b *broker) []int {
	want := []string{builtinBin}
	if p, err := filepath.EvalSymlinks(builtinBin); err == nil {
		want = append(want, p)
	}
	var pids []int
	for _, c := range childPIDs(b.cmd.Process.Pid) {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", c))
		if err != nil {
			// Not ours to read, or a zombie: try its command line.
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
			exe, _, _ = strings.Cut(string(cmdline), "\x00")
		}
		if slices.Contains(want, exe) && !processGone(c) {
			pids = append(pids, c)
		}
	}
	return pids
}

// waitPluginPIDs waits for the broker to run a plugin process that is not
// in old and returns the plugin processes it runs.
func waitPluginPIDs(t *testing.T, b *broker, old []int) []int {
	t.Helper()
	var pids []int
	waitFor(t, 30*time.Second, fmt.Sprintf("a plugin process (%s) under the broker other than %v", builtinBin, old), func() bool {
		pids = pluginPIDs(b)
		return slices.ContainsFunc(pids, func(p int) bool { return !slices.Contains(old, p) })
	})
	return pids
}

// onePluginPID is waitPluginPIDs expecting one plugin process.
func onePluginPID(t *testing.T, b *broker, old []int) int {
	t.Helper()
	pids := waitPluginPIDs(t, b, old)
	if len(pids) != 1 {
		t.Fatalf("the broker runs %d plugin processes %v, want 1", len(pids), pids)
	}
	return pids[0]
}

// processGone reports whether process pid no longer runs: it does not
// exist or is a zombie waiting for its parent.
func processGone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) == 0 || fields[0] == "Z" || fields[0] == "X"
}

// ackGap returns how many of times (sorted) fall in [from, to] and the
// longest span of [from, to] without one.
func ackGap(times []time.Time, from, to time.Time) (int, time.Duration) {
	n, last, gap := 0, from, time.Duration(0)
	for _, at := range times {
		if at.Before(from) || at.After(to) {
			continue
		}
		n++
		gap = max(gap, at.Sub(last))
		last = at
	}
	return n, max(gap, to.Sub(last))
}

// prober sends raw requests, one batch of one record each, to partition
// 0 of plug and native, and remembers what it sent.
type prober struct {
	cl     *kgo.Client
	plugID [16]byte // plug's topic id, for Fetch v13
	n      int
	sent   map[string]map[string]probe // topic → value → outcome
}

// probe is the outcome of one raw produced record.
type probe struct {
	acked  bool // ErrorCode 0: it must be in the log at offset
	offset int64
}

// probeResult is a raw Produce's answer for each topic (-1: no answer).
type probeResult struct {
	plug, native int16
	err          error
}

func newProber(t *testing.T, addr string, adm *kadm.Client) *prober {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	td, err := adm.ListTopics(ctx, "plug")
	if err != nil || td["plug"].Err != nil {
		t.Fatalf("metadata of plug: %v %v", err, td["plug"].Err)
	}
	return &prober{cl: cl, plugID: td["plug"].ID, sent: map[string]map[string]probe{"plug": {}, "native": {}}}
}

// produce sends one Produce request (acks=all) with a record for partition
// 0 of each of plug and native.
func (pr *prober) produce(t *testing.T) probeResult {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 10000
	values := map[string]string{}
	for _, topic := range []string{"plug", "native"} {
		pr.n++
		v := fmt.Sprintf("probe-%s-%d", topic, pr.n)
		values[topic] = v
		batch, _ := enginetest.NewBatchOf(0, [][]byte{[]byte(v)}, []int64{time.Now().UnixMilli()})
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = 0
		rp.Records = batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		pr.sent[topic][v] = probe{} // outcome unknown until answered
	}
	res := probeResult{plug: -1, native: -1}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := pr.cl.Request(ctx, req)
	if err != nil {
		res.err = err
		return res
	}
	for _, rt := range resp.(*kmsg.ProduceResponse).Topics {
		for _, rp := range rt.Partitions {
			if rp.Partition != 0 || values[rt.Topic] == "" {
				t.Errorf("raw Produce answered for %s/%d, which it did not send to", rt.Topic, rp.Partition)
				continue
			}
			if rp.ErrorCode == 0 {
				pr.sent[rt.Topic][values[rt.Topic]] = probe{acked: true, offset: rp.BaseOffset}
			}
			switch rt.Topic {
			case "plug":
				res.plug = rp.ErrorCode
			case "native":
				res.native = rp.ErrorCode
			}
		}
	}
	return res
}

// fetch sends one Fetch request for plug/0 from offset 0 and returns its
// error code (-1: no answer).
func (pr *prober) fetch(t *testing.T) int16 {
	t.Helper()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = "plug", pr.plugID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = 0
	rp.FetchOffset = 0
	rp.PartitionMaxBytes = 1 << 16
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := pr.cl.Request(ctx, req)
	if err != nil {
		return -1
	}
	for _, rt := range resp.(*kmsg.FetchResponse).Topics {
		for _, rp := range rt.Partitions {
			if rp.Partition == 0 {
				return rp.ErrorCode
			}
		}
	}
	return -1
}

// seqProducer produces sequenced records, "<topic>-p<partition>-<seq>"
// with seq counting each partition's records from 0, round robin over the
// partitions at about one record a millisecond, with a franz-go idempotent
// producer (acks=all), until finish: at most maxSeqRecords records or 8
// minutes.
type seqProducer struct {
	topic      string
	partitions int
	cl         *kgo.Client
	nacked     atomic.Int64
	stop, done chan struct{}
	cancel     context.CancelFunc
	inflight   sync.WaitGroup

	mu       sync.Mutex
	sent     []int       // per partition: records handed to Produce
	acked    [][]ack     // per partition, in acknowledgement order
	ackAt    []time.Time // every acknowledgement's time
	errs     []error
	dataLoss int // OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID seen
}

// ack is one acknowledged record.
type ack struct {
	seq    int
	offset int64
}

const maxSeqRecords = 200000

func startSeqProducer(t *testing.T, addr, topic string, partitions int) *seqProducer {
	t.Helper()
	p := &seqProducer{
		topic:      topic,
		partitions: partitions,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		sent:       make([]int, partitions),
		acked:      make([][]ack, partitions),
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(20000),
		kgo.ProducerOnDataLossDetected(func(string, int32) {
			p.mu.Lock()
			p.dataLoss++
			p.mu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	p.cl = cl
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	p.cancel = cancel
	go func() {
		defer close(p.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := range maxSeqRecords {
			select {
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			part := i % partitions
			p.mu.Lock()
			seq := p.sent[part]
			p.sent[part]++
			p.mu.Unlock()
			r := &kgo.Record{Partition: int32(part), Value: fmt.Appendf(nil, "%s-p%d-%08d", topic, part, seq)}
			p.inflight.Add(1)
			cl.Produce(ctx, r, func(r *kgo.Record, err error) {
				defer p.inflight.Done()
				now := time.Now()
				p.mu.Lock()
				defer p.mu.Unlock()
				if err != nil {
					p.errs = append(p.errs, err)
					return
				}
				p.acked[r.Partition] = append(p.acked[r.Partition], ack{seq, r.Offset})
				p.ackAt = append(p.ackAt, now)
				p.nacked.Add(1)
			})
		}
	}()
	return p
}

func (p *seqProducer) acks() int64 { return p.nacked.Load() }

func (p *seqProducer) ackTimes() []time.Time {
	p.mu.Lock()
	ts := slices.Clone(p.ackAt)
	p.mu.Unlock()
	slices.SortFunc(ts, time.Time.Compare)
	return ts
}

// finish stops producing and waits for every record's outcome.
func (p *seqProducer) finish(t *testing.T) {
	t.Helper()
	defer p.cancel()
	close(p.stop)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: the producer loop did not stop within 60s", p.topic)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.cl.Flush(ctx); err != nil {
		t.Errorf("%s: flush: %v", p.topic, err)
	}
	p.cl.Close() // fails whatever is left
	waitc := make(chan struct{})
	go func() { p.inflight.Wait(); close(waitc) }()
	select {
	case <-waitc:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: producer callbacks not all called 30s after Close", p.topic)
	}
}

// checkSequenced checks what consumeAll read from p's topic: offsets 0, 1,
// ... in each partition; p's records in sequence order, each at most once,
// each acknowledged one at the offset it was acknowledged with, none that
// was not produced; the raw probes' records at most once, each
// acknowledged one at its offset. It returns how many of p's records were
// read, acknowledged records missing (lost) and read twice (dups).
func checkSequenced(t *testing.T, p *seqProducer, got [][]*kgo.Record, probes map[string]probe) (read, lost, dups int) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	bad := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: "+format, append([]any{p.topic}, args...)...)
		if bad++; bad >= 20 {
			t.FailNow()
		}
	}
	var total, gaps, probesRead, probesAcked int
	for part := range p.partitions {
		at := map[int]int64{}         // seq → offset read
		probeAt := map[string]int64{} // probe value → offset read
		last := -1
		for i, r := range got[part] {
			if r.Offset != int64(i) {
				fail("partition %d: record %d read at offset %d", part, i, r.Offset)
			}
			v := string(r.Value)
			if strings.HasPrefix(v, "probe-") {
				pr, sent := probes[v]
				_, twice := probeAt[v]
				switch {
				case !sent || part != 0:
					fail("partition %d offset %d: %q was never produced there", part, r.Offset, v)
				case twice:
					fail("partition %d: raw record %q at offsets %d and %d", part, v, probeAt[v], r.Offset)
				case pr.acked && pr.offset != r.Offset:
					fail("partition %d: raw record %q acknowledged at offset %d, read at %d", part, v, pr.offset, r.Offset)
				}
				probeAt[v] = r.Offset
				continue
			}
			seq, ok := parseSeq(v, p.topic, part)
			switch {
			case !ok || seq >= p.sent[part]:
				fail("partition %d offset %d: %q was never produced there", part, r.Offset, v)
				continue
			case seq <= last:
				if _, again := at[seq]; again {
					dups++
				}
				fail("partition %d offset %d: seq %d after seq %d (duplicate or reordered)", part, r.Offset, seq, last)
				continue
			case seq != last+1:
				gaps++
			}
			last = seq
			at[seq] = r.Offset
			read++
		}
		for _, a := range p.acked[part] {
			off, ok := at[a.seq]
			switch {
			case !ok:
				lost++
				fail("partition %d: acknowledged seq %d (offset %d) is not in the log", part, a.seq, a.offset)
			case off != a.offset:
				fail("partition %d: seq %d acknowledged at offset %d, read at %d", part, a.seq, a.offset, off)
			}
		}
		if part == 0 {
			for v, pr := range probes {
				if _, ok := probeAt[v]; pr.acked && !ok {
					fail("partition 0: acknowledged raw record %q (offset %d) is not in the log", v, pr.offset)
				}
				if pr.acked {
					probesAcked++
				}
			}
			probesRead = len(probeAt)
		}
		total += len(got[part])
		t.Logf("%s/%d: %d produced, %d acknowledged, %d records read", p.topic, part, p.sent[part], len(p.acked[part]), len(got[part]))
	}
	t.Logf("%s: %d records read, %d acknowledged by the producer, %d failed; %d raw records sent, %d acknowledged, %d read; %d gaps in sequence",
		p.topic, total, p.nacked.Load(), len(p.errs), len(probes), probesAcked, probesRead, gaps)
	return read, lost, dups
}

// parseSeq parses "<topic>-p<partition>-<seq>".
func parseSeq(v, topic string, partition int) (int, bool) {
	rest, ok := strings.CutPrefix(v, fmt.Sprintf("%s-p%d-", topic, partition))
	if !ok {
		return 0, false
	}
	seq, err := strconv.Atoi(rest)
	return seq, err == nil && seq >= 0
}
