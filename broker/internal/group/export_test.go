package group

// EncodeRecord is encodeRecord, for the codec's tests.
var EncodeRecord = encodeRecord
