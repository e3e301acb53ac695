package engine

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// OpenFunc opens (creating if needed) an engine whose state lives under dir.
// opts has had EnsureDefaults applied and passed Validate.
type OpenFunc func(ctx context.Context, dir string, opts Options) (Engine, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]OpenFunc{}
)

// Register makes an engine available by name, as database/sql.Register does
// for drivers. It is meant to be called from an engine package's init
// function; it panics if open is nil or the name is taken, since either is a
// programming error found at start-up.
func Register(name string, open OpenFunc) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if open == nil {
		panic("engine: Register open func is nil")
	}
	if _, dup := registry[name]; dup {
		panic("engine: Register called twice for engine " + name)
	}
	registry[name] = open
}

// Names returns the registered engine names, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Open opens the engine registered under name with its state under dir.
// It fills defaults into opts and validates them first.
func Open(ctx context.Context, name, dir string, opts Options) (Engine, error) {
	registryMu.RLock()
	open, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (registered: %v)", ErrUnknownEngine, name, Names())
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return open(ctx, dir, opts)
}
