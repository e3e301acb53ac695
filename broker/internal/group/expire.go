package group

// Expiry: every offsets.retention.check.interval.ms, offsets older than
// offsets.retention.minutes go as Kafka decides (group.expiredOffsets),
// and an Empty group left with no offsets is removed (Dead, with a
// tombstone).

import (
	"context"
	"slices"
	"time"
)

// runExpiry is the expiry timer's pass; it arms the next one.
func (c *Coordinator) runExpiry() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	c.ExpireOffsets(c.ctx, c.now())
	c.mu.Lock()
	if !c.closed {
		c.expiry = time.AfterFunc(c.retentionCheckInterval(), c.runExpiry)
	}
	c.mu.Unlock()
}

// ExpireOffsets removes, as of now, the offsets whose retention has
// passed, and the Empty groups left without offsets, writing their
// tombstones; every offsets.retention.check.interval.ms the coordinator
// runs it itself. It returns how many offsets it removed.
func (c *Coordinator) ExpireOffsets(ctx context.Context, now time.Time) int {
	removed := 0
	for _, g := range c.all() {
		g.mu.Lock()
		recs := g.expiredOffsets(now, c.cfg.OffsetsRetentionMs)
		removed += len(recs)
		if g.state == groupEmpty && !g.hasOffsets() && len(g.pending) == 0 {
			g.transition(groupDead)
			g.stopTimers()
			c.removeGroup(g)
			recs = append(recs, Record{Group: &GroupRecord{Group: g.id, Delete: true}})
		}
		var w *groupWrite
		if len(recs) > 0 {
			w = c.newWrite(g, recs)
		}
		g.mu.Unlock()
		if w != nil {
			if err := w.run(ctx, nil); err != nil {
				c.log.Warn("writing expired offsets", "group", g.id, "err", err)
			}
		}
	}
	if removed > 0 {
		c.log.Info("expired offsets", "offsets", removed)
	}
	return removed
}

// expiredOffsets removes the offsets whose retention has passed as of now
// and returns their tombstones, following Kafka: an Empty group's offsets
// expire retention after it became Empty; a simple group's (no protocol
// type) and the unsubscribed topics' of a Stable consumer group expire
// retention after their commit; an explicit expire timestamp (OffsetCommit
// v2–v4) wins over both.
func (g *group) expiredOffsets(now time.Time, retention time.Duration) []Record {
	var base func(o *committedOffset) int64
	var skip map[string]bool
	switch {
	case g.protocolType != "" && g.state == groupEmpty:
		st := g.stateTime.UnixMilli()
		base = func(*committedOffset) int64 { return st }
	case g.protocolType == consumerProtocolType && g.subscribed != nil && g.state == groupStable:
		base = func(o *committedOffset) int64 { return o.commitTime }
		skip = g.subscribed
	case g.protocolType == "":
		base = func(o *committedOffset) int64 { return o.commitTime }
	default:
		return nil
	}
	nowMs := now.UnixMilli()
	expired := map[string][]int32{}
	for topic, ps := range g.offsets {
		if skip[topic] {
			continue
		}
		for p, o := range ps {
			if o.expireTime >= 0 && nowMs >= o.expireTime ||
				o.expireTime < 0 && nowMs-base(o) >= retention.Milliseconds() {
				expired[topic] = append(expired[topic], p)
			}
		}
	}
	for _, ps := range expired {
		slices.Sort(ps)
	}
	return g.removeOffsets(false, expired)
}
