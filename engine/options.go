package engine

import (
	"fmt"
	"log/slog"
	"math"
	"time"
)

// Defaults, as Kafka's topic configs of the same names.
const (
	DefaultSegmentBytes       = 1 << 30            // segment.bytes
	DefaultSegmentMs          = 7 * 24 * time.Hour // segment.ms
	DefaultIndexIntervalBytes = 4096               // index.interval.bytes
	DefaultSegmentIndexBytes  = 10 << 20           // segment.index.bytes
	DefaultFlushMessages      = math.MaxInt64      // flush.messages: never by count
	DefaultFlushInterval      = time.Duration(math.MaxInt64)

	// MinSegmentBytes is the smallest segment.bytes accepted: a segment
	// must hold at least a batch header.
	MinSegmentBytes = BatchHeaderSize
	// MinSegmentIndexBytes is the smallest segment.index.bytes accepted.
	MinSegmentIndexBytes = 4 * 12
)

// Options configure an engine. The zero value is usable: EnsureDefaults fills
// every zero field, and Open calls it.
type Options struct {
	// FS is where the engine opens its files. Default: the operating
	// system's file system (OSFS). Tests inject faults through it.
	FS FS
	// Logger receives the engine's structured logs. Default: slog.Default().
	Logger *slog.Logger
	// Now returns the current time; segment.ms and flush.ms are measured
	// with it. Default: time.Now.
	Now func() time.Time
	// Log holds the defaults for every log of the engine; OpenLog may
	// override them per log (topic configs).
	Log LogOptions
	// Settings holds engine-specific keys (for example
	// strata.pebble.cache.size), validated by the engine that reads them.
	Settings map[string]string
}

// LogOptions configure one log. A zero field means "the engine's default",
// which is the Kafka default named beside each field unless Options.Log says
// otherwise.
type LogOptions struct {
	// SegmentBytes (segment.bytes) is the size at which an engine that
	// keeps segments starts a new one. A batch larger than this still
	// goes in, alone in its segment.
	SegmentBytes int64
	// SegmentMs (segment.ms) is the age at which the active segment rolls
	// even if not full.
	SegmentMs time.Duration
	// IndexIntervalBytes (index.interval.bytes) is how many bytes of
	// batches lie between two entries of a sparse offset index.
	IndexIntervalBytes int32
	// SegmentIndexBytes (segment.index.bytes) is the most bytes an index
	// file of one segment may take; a full index rolls the segment.
	SegmentIndexBytes int32
	// FlushMessages (flush.messages) makes Append sync once this many
	// records were appended since the last sync. 1 syncs every append.
	FlushMessages int64
	// FlushInterval (flush.ms) makes the engine sync a log whose oldest
	// unsynced append is this old.
	FlushInterval time.Duration
	// LocalRetentionMs (local.retention.ms) is, for an engine with a cold
	// tier, how long a sealed segment keeps its hot copy on local disk,
	// measured from its max timestamp; after that it moves to the cold
	// tier. A negative value keeps hot copies for as long as the log keeps
	// the data: -2 ms is Kafka's -2 ("as retention.ms"; retention.* is the
	// broker's job, through DeleteBefore, so for the engine that is
	// forever), -1 ms is "forever". The zero value is the engine's default
	// (Options.Log), and a zero there means 0: move as soon as sealed.
	// Engines without a cold tier ignore it.
	LocalRetentionMs time.Duration
	// LocalRetentionBytes (local.retention.bytes) caps the bytes of a log
	// kept on local disk by an engine with a cold tier: the oldest sealed
	// segments beyond it move to the cold tier. -2 (Kafka's "as
	// retention.bytes") and -1 set no cap. The zero value is the engine's
	// default (Options.Log), and a zero there means 0: no sealed segment
	// keeps a hot copy. Engines without a cold tier ignore it.
	LocalRetentionBytes int64
}

// LocalRetentionAsRetention is Kafka's -2 of local.retention.ms (in
// milliseconds) and local.retention.bytes: "as retention.ms /
// retention.bytes", so hot copies stay as long as the log keeps the data.
const LocalRetentionAsRetention = -2

// EnsureDefaults fills zero fields with defaults.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = OSFS
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.Log = o.Log.WithDefaults(LogOptions{
		SegmentBytes:       DefaultSegmentBytes,
		SegmentMs:          DefaultSegmentMs,
		IndexIntervalBytes: DefaultIndexIntervalBytes,
		SegmentIndexBytes:  DefaultSegmentIndexBytes,
		FlushMessages:      DefaultFlushMessages,
		FlushInterval:      DefaultFlushInterval,
	})
}

// Validate reports the first option outside its range, naming it by its
// Kafka config key, with an error wrapping ErrInvalidOptions.
func (o *Options) Validate() error { return o.Log.Validate() }

// WithDefaults returns o with every zero field taken from def.
func (o LogOptions) WithDefaults(def LogOptions) LogOptions {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = def.SegmentBytes
	}
	if o.SegmentMs == 0 {
		o.SegmentMs = def.SegmentMs
	}
	if o.IndexIntervalBytes == 0 {
		o.IndexIntervalBytes = def.IndexIntervalBytes
	}
	if o.SegmentIndexBytes == 0 {
		o.SegmentIndexBytes = def.SegmentIndexBytes
	}
	if o.FlushMessages == 0 {
		o.FlushMessages = def.FlushMessages
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = def.FlushInterval
	}
	if o.LocalRetentionMs == 0 {
		o.LocalRetentionMs = def.LocalRetentionMs
	}
	if o.LocalRetentionBytes == 0 {
		o.LocalRetentionBytes = def.LocalRetentionBytes
	}
	return o
}

// Validate reports the first field outside its range, naming it by its
// Kafka config key. It expects defaults to have been filled in.
func (o LogOptions) Validate() error {
	bad := func(key string, v any, want string) error {
		return fmt.Errorf("%w: %s=%v: must be %s", ErrInvalidOptions, key, v, want)
	}
	switch {
	case o.SegmentBytes < MinSegmentBytes:
		return bad("segment.bytes", o.SegmentBytes, fmt.Sprintf(">= %d", MinSegmentBytes))
	case o.SegmentMs < time.Millisecond:
		return bad("segment.ms", o.SegmentMs.Milliseconds(), ">= 1")
	case o.IndexIntervalBytes < 0:
		return bad("index.interval.bytes", o.IndexIntervalBytes, ">= 0")
	case o.SegmentIndexBytes < MinSegmentIndexBytes:
		return bad("segment.index.bytes", o.SegmentIndexBytes, fmt.Sprintf(">= %d", MinSegmentIndexBytes))
	case o.FlushMessages < 1:
		return bad("flush.messages", o.FlushMessages, ">= 1")
	case o.FlushInterval < 0:
		return bad("flush.ms", o.FlushInterval.Milliseconds(), ">= 0")
	case o.LocalRetentionMs < LocalRetentionAsRetention*time.Millisecond:
		return bad("local.retention.ms", o.LocalRetentionMs.Milliseconds(), ">= -2")
	case o.LocalRetentionBytes < LocalRetentionAsRetention:
		return bad("local.retention.bytes", o.LocalRetentionBytes, ">= -2")
	}
	return nil
}
