//go:build !linux

package plugins

import (
	"errors"
	"os"
)

// Shared regions are implemented on Linux only; elsewhere appends carry
// their bytes in the messages.

var errNoShared = errors.New("plugins: shared regions need Linux")

func createShared(int) ([]byte, string, *os.File, error) { return nil, "", nil, errNoShared }

func mapShared(string, int64) ([]byte, error) { return nil, errNoShared }

func unmapShared([]byte) error { return nil }
