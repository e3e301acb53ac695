//go:build !(linux || darwin || freebsd)

package broker

// volumeBytes reports Kafka's UNKNOWN_VOLUME_BYTES (-1) where statfs(2)
// is not wired up.
func volumeBytes(string) (total, usable int64) { return -1, -1 }
