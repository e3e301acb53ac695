package bench

import (
	"testing"

	// engines register themselves; link every built-in one.
	_ "github.com/strata-broker/strata/engines/lsm"
	_ "github.com/strata-broker/strata/engines/mem"
	_ "github.com/strata-broker/strata/engines/mmap"
)

// BenchmarkEngine runs every engine workload over raw and every registered
// engine: BenchmarkEngine/<engine>/<op>.
func BenchmarkEngine(b *testing.B) { RunEngines(b) }
