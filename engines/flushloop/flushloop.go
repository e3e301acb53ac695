// Package flushloop is the background flusher the file-backed engines
// share for flush.ms: a goroutine that wakes every quarter of the shortest
// flush interval among the open logs (between 1 ms and 1 s), or at once
// when kicked, and hands every open log to the engine's flush function,
// which syncs the ones that are due.
package flushloop

import "time"

// Run runs the loop until stop is closed. logs returns the open logs,
// interval a log's flush interval (flush.ms), and flush is called for
// every open log at each wake-up with the time of that wake-up (nanoseconds
// from now); it syncs the log if its oldest unsynced append is older than
// its interval, and reports its own errors.
func Run[L any](stop, kick <-chan struct{}, now func() time.Time, logs func() []L, interval func(L) time.Duration, flush func(l L, now int64)) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		open := logs()
		period := time.Second
		for _, l := range open {
			period = min(period, max(interval(l)/4, time.Millisecond))
		}
		t.Reset(period)
		select {
		case <-stop:
			return
		case <-kick:
		case <-t.C:
		}
		at := now().UnixNano()
		for _, l := range open {
			flush(l, at)
		}
	}
}
