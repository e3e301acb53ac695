package partition

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// epochsDir is the directory, in each log dir, of the partitions'
// leader-epoch checkpoints: one file per partition, named as the
// partition (topic-partition), in Kafka's leader-epoch-checkpoint format.
const epochsDir = "leader-epoch-checkpoint"

// epochEntry is the first offset of one leader epoch in a log.
type epochEntry struct {
	epoch int32
	start int64
}

// leaderEpochs is a partition's leader-epoch cache: for every leader epoch
// whose batches the log holds, the offset where it begins. A leader adds
// its epoch at its log end when it starts leading; a follower adds the
// epochs of the batches it copies. It answers OffsetForLeaderEpoch, and
// tells a follower where its log diverges from its leader's (the
// follower truncates there). Every change is written to the checkpoint
// file before it is used, so the cache survives restarts; at open it is
// cut to the log's offsets, since a crash may have cut the log.
type leaderEpochs struct {
	mu      sync.Mutex
	dir     string // the checkpoint's directory
	name    string // its file name
	entries []epochEntry
}

// checkpointPath is where the checkpoint of tp lives in log dir dir.
func epochsPath(dir string, tp engine.TopicPartition) (string, string) {
	return filepath.Join(dir, epochsDir), tp.String()
}

// openLeaderEpochs loads the checkpoint of tp from log dir dir, or builds
// it from the batch headers of the log if there is none (a log written
// before checkpoints were kept), and cuts it to the log's offsets.
func openLeaderEpochs(ctx context.Context, dir string, tp engine.TopicPartition, l engine.Log, walk func(ctx context.Context, from, to int64, fn func(h *engine.BatchHeader) bool) error) (*leaderEpochs, error) {
	d, name := epochsPath(dir, tp)
	c := &leaderEpochs{dir: d, name: name}
	data, err := os.ReadFile(filepath.Join(d, name))
	start, end := l.Offsets()
	switch {
	case err == nil:
		if c.entries, err = parseEpochs(data); err != nil {
			return nil, fmt.Errorf("broker: leader-epoch checkpoint of %s: %w", tp, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		err := walk(ctx, start, end, func(h *engine.BatchHeader) bool {
			if h.PartitionLeaderEpoch >= 0 && (len(c.entries) == 0 || h.PartitionLeaderEpoch > c.entries[len(c.entries)-1].epoch) {
				c.entries = append(c.entries, epochEntry{epoch: h.PartitionLeaderEpoch, start: max(h.BaseOffset, start)})
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("broker: rebuilding the leader epochs of %s: %w", tp, err)
		}
		if len(c.entries) > 0 {
			if err := c.save(); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("broker: leader-epoch checkpoint of %s: %w", tp, err)
	}
	if err := c.truncateFromEnd(end); err != nil {
		return nil, err
	}
	if err := c.truncateFromStart(start); err != nil {
		return nil, err
	}
	return c, nil
}

// parseEpochs reads the checkpoint format: a version line (0), a count
// line, then one "epoch offset" line per entry.
func parseEpochs(data []byte) ([]epochEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) < 2 || lines[0] != "0" {
		return nil, errors.New("not a version 0 checkpoint")
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n != len(lines)-2 {
		return nil, fmt.Errorf("count %q does not match %d entries", lines[1], len(lines)-2)
	}
	out := make([]epochEntry, 0, n)
	for _, l := range lines[2:] {
		e, o, ok := strings.Cut(l, " ")
		epoch, err1 := strconv.ParseInt(e, 10, 32)
		start, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || epoch < 0 || start < 0 {
			return nil, fmt.Errorf("entry %q", l)
		}
		if k := len(out); k > 0 && (int32(epoch) <= out[k-1].epoch || start < out[k-1].start) {
			return nil, fmt.Errorf("entry %q out of order", l)
		}
		out = append(out, epochEntry{epoch: int32(epoch), start: start})
	}
	return out, nil
}

// save writes the checkpoint (under mu, or before the cache is shared).
func (c *leaderEpochs) save() error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.start)
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return fmt.Errorf("broker: leader-epoch checkpoint: %w", err)
	}
	if err := coordination.WriteAtomic(engine.OSFS, c.dir, c.name, b.Bytes()); err != nil {
		return fmt.Errorf("broker: leader-epoch checkpoint: %w", err)
	}
	return nil
}

// latest returns the newest epoch the log holds, or -1.
func (c *leaderEpochs) latest() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) == 0 {
		return -1
	}
	return c.entries[len(c.entries)-1].epoch
}

// startOf returns where epoch begins, or -1 if the log holds no such
// epoch.
func (c *leaderEpochs) startOf(epoch int32) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.epoch == epoch {
			return e.start
		}
	}
	return -1
}

// assign records that epoch begins at start, if it is newer than every
// epoch the cache holds; an older or equal epoch changes nothing.
func (c *leaderEpochs) assign(epoch int32, start int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch < 0 {
		return nil
	}
	if k := len(c.entries); k > 0 {
		last := c.entries[k-1]
		if epoch <= last.epoch {
			return nil
		}
		if start <= last.start {
			// The log was cut below the last epoch's start without
			// the cache being told: drop what no longer exists.
			c.entries = slices.DeleteFunc(c.entries, func(e epochEntry) bool { return e.start >= start })
		}
	}
	c.entries = append(c.entries, epochEntry{epoch: epoch, start: start})
	return c.save()
}

// endOffsetFor answers, for a requested epoch, the largest epoch at or
// below it that the log holds and the offset where that epoch ends (the
// start of the next epoch, or logEnd for the newest one), as Kafka's
// leader-epoch cache does:
//   - the newest epoch: (epoch, logEnd);
//   - an epoch above the newest, or -1: (-1, -1), undefined;
//   - an epoch below the oldest: (epoch, start of the oldest);
//   - otherwise: (the floor epoch, start of the next epoch).
func (c *leaderEpochs) endOffsetFor(epoch int32, logEnd int64) (int32, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := len(c.entries)
	switch {
	case epoch < 0 || k == 0:
		return -1, -1
	case epoch == c.entries[k-1].epoch:
		return epoch, logEnd
	case epoch > c.entries[k-1].epoch:
		return -1, -1
	}
	// The first entry above epoch exists, since epoch < the newest.
	i, _ := slices.BinarySearchFunc(c.entries, epoch+1, func(e epochEntry, t int32) int { return int(e.epoch - t) })
	if i == 0 {
		return epoch, c.entries[0].start
	}
	return c.entries[i-1].epoch, c.entries[i].start
}

// truncateFromEnd forgets the epochs that begin at or after offset (the
// log was truncated to offset).
func (c *leaderEpochs) truncateFromEnd(offset int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := len(c.entries)
	c.entries = slices.DeleteFunc(c.entries, func(e epochEntry) bool { return e.start >= offset })
	if len(c.entries) == k {
		return nil
	}
	return c.save()
}

// truncateFromStart moves the epochs that begin below offset up to it
// (the log's start moved to offset): the newest of them begins at offset,
// the older ones go.
func (c *leaderEpochs) truncateFromStart(offset int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := 0
	for i < len(c.entries) && c.entries[i].start < offset {
		i++
	}
	if i == 0 {
		return nil
	}
	if i < len(c.entries) && c.entries[i].start == offset {
		c.entries = c.entries[i:]
	} else {
		c.entries = c.entries[i-1:]
		c.entries[0].start = offset
	}
	return c.save()
}

// clearAll forgets every epoch (the log was emptied to start over).
func (c *leaderEpochs) clearAll() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) == 0 {
		return nil
	}
	c.entries = nil
	return c.save()
}

// removeLeaderEpochs deletes the checkpoint of tp in log dir dir (its log
// was deleted).
func removeLeaderEpochs(dir string, tp engine.TopicPartition) error {
	d, name := epochsPath(dir, tp)
	if err := os.Remove(filepath.Join(d, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch from the leader-epoch
// cache: the largest epoch at or below epoch that the log holds and where
// it ends (endOffsetFor); (-1, -1) when undefined.
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64) {
	_, end := p.log.Offsets()
	return p.epochs.endOffsetFor(epoch, end)
}
