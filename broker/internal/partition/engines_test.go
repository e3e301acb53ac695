package partition

// The tests open logs by engine name, as the broker does.
import (
	_ "github.com/strata-broker/strata/engines/mem"
	_ "github.com/strata-broker/strata/engines/mmap"
)
