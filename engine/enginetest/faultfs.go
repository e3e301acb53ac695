package enginetest

import (
	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/engine/faultfs"
)

// FaultFS is the fault-injecting engine.FS the suite opens every engine on
// (package faultfs).
type FaultFS = faultfs.FS

// ErrInjected is the error a FaultFS fails operations with unless Fail was
// given another.
var ErrInjected = faultfs.ErrInjected

// NewFaultFS returns a FaultFS over fs, not armed.
func NewFaultFS(fs engine.FS) *FaultFS { return faultfs.New(fs) }
