package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"
)

// decompressor decompresses batch payloads where the broker must look at
// records (ListOffsets by time); the data path never does.
var decompressor = kgo.DefaultDecompressor()

// findRecord returns the offset and timestamp of the first record of the
// batch, at or after minOffset, whose timestamp satisfies match. In a
// LogAppendTime batch every record has the batch's max timestamp.
func findRecord(batch []byte, minOffset int64, match func(ts int64) bool) (offset, ts int64, ok bool, err error) {
	h, err := engine.ParseBatchHeader(batch)
	if err != nil {
		return 0, 0, false, err
	}
	if len(batch) < h.Size() {
		return 0, 0, false, fmt.Errorf("%w: batch truncated", engine.ErrInvalidBatch)
	}
	if h.Attributes&attrLogAppendTime != 0 {
		if !match(h.MaxTimestamp) || h.LastOffset() < minOffset {
			return 0, 0, false, nil
		}
		return max(h.BaseOffset, minOffset), h.MaxTimestamp, true, nil
	}
	payload := batch[engine.BatchHeaderSize:h.Size()]
	if codec := h.Attributes & attrCompressionMask; codec != 0 {
		payload, err = decompressor.Decompress(payload, kgo.CompressionCodecType(codec))
		if err != nil {
			return 0, 0, false, fmt.Errorf("broker: decompressing a batch at %d: %w", h.BaseOffset, err)
		}
	}
	for i := int32(0); i < h.RecordCount && len(payload) > 0; i++ {
		length, n := kbin.Varint(payload)
		if n == 0 || length < 0 || int(length) > len(payload)-n {
			return 0, 0, false, fmt.Errorf("%w: record %d of the batch at %d is malformed", engine.ErrInvalidBatch, i, h.BaseOffset)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(payload[:n+int(length)]); err != nil {
			return 0, 0, false, fmt.Errorf("%w: record %d of the batch at %d: %v", engine.ErrInvalidBatch, i, h.BaseOffset, err)
		}
		payload = payload[n+int(length):]
		off := h.BaseOffset + int64(rec.OffsetDelta)
		rts := h.BaseTimestamp + rec.TimestampDelta64
		if off >= minOffset && match(rts) {
			return off, rts, true, nil
		}
	}
	return 0, 0, false, nil
}
