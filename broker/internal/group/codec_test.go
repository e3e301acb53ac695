package group_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/broker/internal/group/grouptest"
)

func TestGroupRecordCodec(t *testing.T) {
	expiring := grouptest.SampleOffset("g", "t", 3, 99)
	expiring.ExpireTimestamp = 1800000000000
	expiringBack := expiring
	expiringBack.LeaderEpoch = -1 // version 1 has no leader epoch
	empty := group.GroupRecord{Group: "g", ProtocolType: "consumer", Generation: 4, StateTimestamp: 5, Members: []group.MemberRecord{}}
	offset := grouptest.SampleOffset("g", "t", 3, 42)
	gr := grouptest.SampleGroup("g", 9)

	for _, tc := range []struct {
		name      string
		in, want  group.Record
		valueVers int16 // -1: tombstone
	}{
		{"offset", group.Record{Offset: &offset}, group.Record{Offset: &offset}, 3},
		{"offset with expire timestamp", group.Record{Offset: &expiring}, group.Record{Offset: &expiringBack}, 1},
		{"offset tombstone", group.Record{Offset: &group.OffsetRecord{Group: "g", Topic: "t", Partition: 3, Delete: true}},
			group.Record{Offset: &group.OffsetRecord{Group: "g", Topic: "t", Partition: 3, Delete: true, LeaderEpoch: -1, ExpireTimestamp: -1}}, -1},
		{"group", group.Record{Group: &gr}, group.Record{Group: &gr}, 3},
		{"empty group", group.Record{Group: &empty}, group.Record{Group: &empty}, 3},
		{"group tombstone", group.Record{Group: &group.GroupRecord{Group: "g", Delete: true}}, group.Record{Group: &group.GroupRecord{Group: "g", Delete: true}}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, value, err := group.EncodeRecord(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if tc.valueVers == -1 {
				if value != nil {
					t.Fatalf("tombstone has value %x", value)
				}
			} else if v := int16(binary.BigEndian.Uint16(value)); v != tc.valueVers {
				t.Fatalf("value version %d, want %d", v, tc.valueVers)
			}
			got, ok, err := group.DecodeRecord(key, value)
			if err != nil || !ok {
				t.Fatalf("decode: ok %v, err %v", ok, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("round trip:\n got %+v %+v\nwant %+v %+v", got.Offset, got.Group, tc.want.Offset, tc.want.Group)
			}
		})
	}

	if _, _, err := group.EncodeRecord(group.Record{}); err == nil {
		t.Error("a record with neither Offset nor Group encoded")
	}
}

// TestGroupRecordKafkaBytes checks the encodings byte by byte against
// Kafka's schemas (OffsetCommitKey, OffsetCommitValue, GroupMetadataKey
// and GroupMetadataValue in Kafka's group-coordinator resources), built
// here by hand.
func TestGroupRecordKafkaBytes(t *testing.T) {
	be := binary.BigEndian
	str := func(b []byte, s string) []byte { return append(be.AppendUint16(b, uint16(len(s))), s...) }
	i16 := func(b []byte, v int16) []byte { return be.AppendUint16(b, uint16(v)) }
	i32 := func(b []byte, v int32) []byte { return be.AppendUint32(b, uint32(v)) }
	i64 := func(b []byte, v int64) []byte { return be.AppendUint64(b, uint64(v)) }
	byts := func(b []byte, v []byte) []byte { return append(i32(b, int32(len(v))), v...) }

	o := grouptest.SampleOffset("grp", "orders", 5, 1234)
	key, value, err := group.EncodeRecord(group.Record{Offset: &o})
	if err != nil {
		t.Fatal(err)
	}
	wantKey := i32(str(str(i16(nil, 1), "grp"), "orders"), 5)
	wantValue := i64(str(i32(i64(i16(nil, 3), 1234), 7), "meta"), 1700000000456)
	if !bytes.Equal(key, wantKey) || !bytes.Equal(value, wantValue) {
		t.Errorf("offset commit:\n key %x\nwant %x\n value %x\n want %x", key, wantKey, value, wantValue)
	}

	o.ExpireTimestamp = 1800000000000
	_, value, _ = group.EncodeRecord(group.Record{Offset: &o})
	wantValue = i64(i64(str(i64(i16(nil, 1), 1234), "meta"), 1700000000456), 1800000000000)
	if !bytes.Equal(value, wantValue) {
		t.Errorf("offset commit v1:\n value %x\n want %x", value, wantValue)
	}

	g := grouptest.SampleGroup("grp", 9)
	g.Members = g.Members[:1]
	g.Leader = "" // null
	key, value, err = group.EncodeRecord(group.Record{Group: &g})
	if err != nil {
		t.Fatal(err)
	}
	wantKey = str(i16(nil, 2), "grp")
	w := str(i16(nil, 3), "consumer")
	w = i32(w, 9)
	w = str(w, "cooperative-sticky")
	w = i16(w, -1) // null leader
	w = i64(w, 1700000000123)
	w = i32(w, 1)
	w = str(w, "m-1")
	w = str(w, "static-1")
	w = str(w, "c1")
	w = str(w, "/127.0.0.1")
	w = i32(w, 60000)
	w = i32(w, 45000)
	w = byts(w, []byte{0, 3, 1})
	w = byts(w, []byte{0, 3, 2})
	if !bytes.Equal(key, wantKey) || !bytes.Equal(value, w) {
		t.Errorf("group metadata:\n key %x\nwant %x\n value %x\n want %x", key, wantKey, value, w)
	}

	// Older versions Kafka wrote still load: offset value v0 (no expire,
	// no epoch), group value v0 (rebalance timeout = session timeout).
	v0 := i64(str(i64(i16(nil, 0), 77), ""), 5)
	got, ok, err := group.DecodeRecord(nil, nil)
	if err == nil {
		t.Errorf("a record without a key decoded: %+v %v", got, ok)
	}
	got, ok, err = group.DecodeRecord(i32(str(str(i16(nil, 0), "g"), "t"), 1), v0)
	if err != nil || !ok || *got.Offset != (group.OffsetRecord{Group: "g", Topic: "t", Partition: 1, Offset: 77, CommitTimestamp: 5, LeaderEpoch: -1, ExpireTimestamp: -1}) {
		t.Errorf("offset value v0: %+v %v %v", got.Offset, ok, err)
	}
	gv0 := str(i16(nil, 0), "consumer")
	gv0 = i32(gv0, 2)
	gv0 = str(gv0, "range")
	gv0 = str(gv0, "m")
	gv0 = i32(gv0, 1)
	gv0 = str(str(str(gv0, "m"), "c"), "h")
	gv0 = i32(gv0, 10000)
	gv0 = byts(byts(gv0, []byte{1}), []byte{2})
	got, ok, err = group.DecodeRecord(str(i16(nil, 2), "g"), gv0)
	if err != nil || !ok {
		t.Fatalf("group value v0: %v %v", ok, err)
	}
	wantG := group.GroupRecord{Group: "g", ProtocolType: "consumer", Generation: 2, Protocol: "range", Leader: "m", StateTimestamp: -1,
		Members: []group.MemberRecord{{MemberID: "m", ClientID: "c", ClientHost: "h", RebalanceTimeout: 10000, SessionTimeout: 10000, Subscription: []byte{1}, Assignment: []byte{2}}}}
	if !reflect.DeepEqual(*got.Group, wantG) {
		t.Errorf("group value v0:\n got %+v\nwant %+v", *got.Group, wantG)
	}

	// Newer key versions (KIP-848 and later records) are skipped.
	if _, ok, err := group.DecodeRecord(str(i16(nil, 3), "g"), []byte{0, 0, 1}); ok || err != nil {
		t.Errorf("key version 3: ok %v err %v, want skipped", ok, err)
	}
	// A value version kmsg does not know is an error, not a guess.
	if _, _, err := group.DecodeRecord(wantKey, i16(nil, 9)); err == nil {
		t.Error("group value version 9 decoded")
	}
	// A truncated value is an error.
	if _, _, err := group.DecodeRecord(i32(str(str(i16(nil, 1), "g"), "t"), 1), v0[:5]); err == nil {
		t.Error("truncated offset value decoded")
	}
}
