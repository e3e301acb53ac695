package group

// The codec of __consumer_offsets: Kafka's keys and values (doc.go has
// them byte by byte), the one batch a Write appends, and the replay of a
// partition's batches into a Loader.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-broker/strata/engine"
)

// The key and value versions written, and the newest value versions read.
const (
	offsetCommitKeyVersion         = 1
	groupMetadataKeyVersion        = 2
	offsetCommitValueVersion       = 3
	offsetCommitValueExpireVersion = 1 // the one version with an expire timestamp
	groupMetadataValueVersion      = 3
	maxOffsetCommitValueVersion    = 4
	maxGroupMetadataValueVersion   = 4
)

// decompressor decompresses the batches a Kafka tool may have written
// compressed; the store itself writes none.
var decompressor = kgo.DefaultDecompressor()

// replayChunks hands l the records of the batches in chunks, read from
// offset at, whose offsets are in [from, to), in order. Nothing l receives
// refers to chunks.
func replayChunks(tp engine.TopicPartition, chunks [][]byte, at, from, to int64, l Loader) error {
	for _, c := range chunks {
		for len(c) > 0 {
			bh, err := engine.CheckBatch(c)
			if err != nil {
				return fmt.Errorf("group: loading %s: the batch at offset %d: %w", tp, at, err)
			}
			at = bh.LastOffset() + 1
			batch := c[:bh.Size()]
			c = c[bh.Size():]
			if bh.BaseOffset >= to {
				return nil
			}
			if bh.LastOffset() < from || bh.Attributes&(engine.AttrControl|engine.AttrTransactional) != 0 {
				continue
			}
			err = eachRecord(batch, bh, func(offset int64, rec *kmsg.Record) error {
				if offset < from || offset >= to {
					return nil
				}
				gr, ok, err := DecodeRecord(rec.Key, rec.Value)
				switch {
				case err != nil:
					return fmt.Errorf("group: loading %s: the record at offset %d: %w", tp, offset, err)
				case !ok:
					return nil
				case gr.Offset != nil:
					l.LoadedOffset(*gr.Offset)
				default:
					l.LoadedGroup(*gr.Group)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// eachRecord calls fn with every record of a whole, checked batch and its
// offset, decompressing the batch first if it is compressed. The records
// may refer to batch.
func eachRecord(batch []byte, h engine.BatchHeader, fn func(offset int64, rec *kmsg.Record) error) error {
	payload := batch[engine.BatchHeaderSize:]
	if codec := h.Attributes & engine.AttrCompressionMask; codec != 0 {
		var err error
		if payload, err = decompressor.Decompress(payload, kgo.CompressionCodecType(codec)); err != nil {
			return fmt.Errorf("group: decompressing the batch at offset %d: %w", h.BaseOffset, err)
		}
	}
	for i := int32(0); i < h.RecordCount; i++ {
		length, n := kbin.Varint(payload)
		if n == 0 || length < 0 || int(length) > len(payload)-n {
			return fmt.Errorf("%w: record %d of the batch at offset %d is malformed", engine.ErrInvalidBatch, i, h.BaseOffset)
		}
		var rec kmsg.Record
		if err := rec.ReadFrom(payload[:n+int(length)]); err != nil {
			return fmt.Errorf("%w: record %d of the batch at offset %d: %v", engine.ErrInvalidBatch, i, h.BaseOffset, err)
		}
		payload = payload[n+int(length):]
		if err := fn(h.BaseOffset+int64(rec.OffsetDelta), &rec); err != nil {
			return err
		}
	}
	return nil
}

// EncodeBatch encodes recs as one v2 record batch of __consumer_offsets:
// offsets from 0 (Logs.Append assigns the real ones), every timestamp now
// (ms since the epoch), no producer id, no compression, and the CRC-32C
// over attributes to the end.
func EncodeBatch(recs []Record, now int64) ([]byte, error) {
	var payload, scratch []byte
	for i, r := range recs {
		key, value, err := encodeRecord(r)
		if err != nil {
			return nil, err
		}
		rec := kmsg.Record{OffsetDelta: int32(i), Key: key, Value: value}
		// Length counts what follows it: encode once with a length of 0
		// (one varint byte) to learn it.
		scratch = rec.AppendTo(scratch[:0])
		rec.Length = int32(len(scratch) - 1)
		payload = rec.AppendTo(payload)
	}
	rb := kmsg.RecordBatch{
		Length:               int32(engine.BatchHeaderSize - engine.BatchLengthOverhead + len(payload)),
		PartitionLeaderEpoch: -1,
		Magic:                2,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       now,
		MaxTimestamp:         now,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
		Records:              payload,
	}
	b := rb.AppendTo(make([]byte, 0, engine.BatchHeaderSize+len(payload)))
	engine.PutChecksum(b)
	return b, nil
}

// encodeRecord returns the key and value of one record of
// __consumer_offsets; the value is nil for a tombstone.
func encodeRecord(r Record) (key, value []byte, err error) {
	switch {
	case r.Offset != nil && r.Group == nil:
		o := r.Offset
		k := kmsg.OffsetCommitKey{Version: offsetCommitKeyVersion, Group: o.Group, Topic: o.Topic, Partition: o.Partition}
		key = k.AppendTo(nil)
		if o.Delete {
			return key, nil, nil
		}
		v := kmsg.OffsetCommitValue{
			Version:         offsetCommitValueVersion,
			Offset:          o.Offset,
			LeaderEpoch:     o.LeaderEpoch,
			Metadata:        o.Metadata,
			CommitTimestamp: o.CommitTimestamp,
		}
		if o.ExpireTimestamp != -1 {
			v.Version, v.ExpireTimestamp = offsetCommitValueExpireVersion, o.ExpireTimestamp
		}
		return key, v.AppendTo(nil), nil

	case r.Group != nil && r.Offset == nil:
		g := r.Group
		k := kmsg.GroupMetadataKey{Version: groupMetadataKeyVersion, Group: g.Group}
		key = k.AppendTo(nil)
		if g.Delete {
			return key, nil, nil
		}
		v := kmsg.GroupMetadataValue{
			Version:               groupMetadataValueVersion,
			ProtocolType:          g.ProtocolType,
			Generation:            g.Generation,
			Protocol:              storeNullable(g.Protocol),
			Leader:                storeNullable(g.Leader),
			CurrentStateTimestamp: g.StateTimestamp,
			Members:               make([]kmsg.GroupMetadataValueMember, len(g.Members)),
		}
		for i, m := range g.Members {
			v.Members[i] = kmsg.GroupMetadataValueMember{
				MemberID:               m.MemberID,
				InstanceID:             storeNullable(m.InstanceID),
				ClientID:               m.ClientID,
				ClientHost:             m.ClientHost,
				RebalanceTimeoutMillis: m.RebalanceTimeout,
				SessionTimeoutMillis:   m.SessionTimeout,
				Subscription:           m.Subscription,
				Assignment:             m.Assignment,
			}
		}
		return key, v.AppendTo(nil), nil

	default:
		return nil, nil, errors.New("a group record needs exactly one of Offset and Group")
	}
}

// DecodeRecord decodes one record of __consumer_offsets (a nil value is a
// tombstone). ok is false for a key version this broker does not know,
// which a load skips. The result shares no memory with key and value.
func DecodeRecord(key, value []byte) (r Record, ok bool, err error) {
	if key == nil {
		return r, false, errors.New("record without a key")
	}
	if len(key) < 2 {
		return r, false, fmt.Errorf("key of %d bytes, too short for a version", len(key))
	}
	switch version := int16(binary.BigEndian.Uint16(key)); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return r, false, fmt.Errorf("offset commit key: %w", err)
		}
		o := &OffsetRecord{Group: k.Group, Topic: k.Topic, Partition: k.Partition, LeaderEpoch: -1, ExpireTimestamp: -1}
		r.Offset = o
		if value == nil {
			o.Delete = true
			return r, true, nil
		}
		if err := checkValueVersion(value, maxOffsetCommitValueVersion); err != nil {
			return r, false, fmt.Errorf("offset commit value: %w", err)
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return r, false, fmt.Errorf("offset commit value version %d: %w", v.Version, err)
		}
		o.Offset, o.Metadata, o.CommitTimestamp = v.Offset, v.Metadata, v.CommitTimestamp
		if v.Version >= 3 {
			o.LeaderEpoch = v.LeaderEpoch
		}
		if v.Version == 1 {
			o.ExpireTimestamp = v.ExpireTimestamp
		}
		return r, true, nil

	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return r, false, fmt.Errorf("group metadata key: %w", err)
		}
		g := &GroupRecord{Group: k.Group}
		r.Group = g
		if value == nil {
			g.Delete = true
			return r, true, nil
		}
		if err := checkValueVersion(value, maxGroupMetadataValueVersion); err != nil {
			return r, false, fmt.Errorf("group metadata value: %w", err)
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return r, false, fmt.Errorf("group metadata value version %d: %w", v.Version, err)
		}
		g.ProtocolType, g.Generation = v.ProtocolType, v.Generation
		g.Protocol, g.Leader = storeString(v.Protocol), storeString(v.Leader)
		g.StateTimestamp = -1
		if v.Version >= 2 {
			g.StateTimestamp = v.CurrentStateTimestamp
		}
		g.Members = make([]MemberRecord, len(v.Members))
		for i, m := range v.Members {
			rebalance := m.RebalanceTimeoutMillis
			if v.Version == 0 {
				rebalance = m.SessionTimeoutMillis // Kafka's reading of version 0
			}
			g.Members[i] = MemberRecord{
				MemberID:         m.MemberID,
				InstanceID:       storeString(m.InstanceID),
				ClientID:         m.ClientID,
				ClientHost:       m.ClientHost,
				RebalanceTimeout: rebalance,
				SessionTimeout:   m.SessionTimeoutMillis,
				// kmsg's bytes alias the input; the input is the
				// engine's memory, released after the load.
				Subscription: slices.Clone(m.Subscription),
				Assignment:   slices.Clone(m.Assignment),
			}
		}
		return r, true, nil

	default:
		return r, false, nil
	}
}

// checkValueVersion checks that a value's leading version is one kmsg
// decodes as Kafka wrote it.
func checkValueVersion(value []byte, newest int16) error {
	if len(value) < 2 {
		return fmt.Errorf("%d bytes, too short for a version", len(value))
	}
	if v := int16(binary.BigEndian.Uint16(value)); v < 0 || v > newest {
		return fmt.Errorf("unknown version %d (known: 0 to %d)", v, newest)
	}
	return nil
}

func storeNullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func storeString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
