package bench

import "testing"

// BenchmarkBroker runs every whole-broker workload over kfake and Strata,
// each in this process on loopback, driven by a franz-go client:
// BenchmarkBroker/<target>/<workload>.
func BenchmarkBroker(b *testing.B) { RunBrokers(b) }
