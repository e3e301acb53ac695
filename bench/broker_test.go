package bench

import "testing"

// BenchmarkBroker runs every whole-broker workload over the targets of
// BrokerTargets (kfake, strata, strata-rf3, and with BaselineEnv set
// strata-base and strata-base-rf3), each a process of its own on loopback,
// driven by a franz-go client: BenchmarkBroker/<target>/<workload>.
func BenchmarkBroker(b *testing.B) { RunBrokers(b) }
