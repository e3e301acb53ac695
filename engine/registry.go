package engine

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// OpenFunc opens (creating if needed) an engine whose state lives under dir.
// opts has had EnsureDefaults applied and passed Validate.
type OpenFunc func(ctx context.Context, dir string, opts Options) (Engine, error)

// SchemeOpenFunc opens an engine named "<scheme>:<ref>" (see
// RegisterScheme), with ref the part after the colon. opts has had
// EnsureDefaults applied and passed Validate.
type SchemeOpenFunc func(ctx context.Context, ref, dir string, opts Options) (Engine, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]OpenFunc{}
	schemes    = map[string]SchemeOpenFunc{}
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

// RegisterScheme makes a family of engines available under names of the
// form "<scheme>:<ref>", which Open passes to open with the ref: package
// plugins registers "plugin", whose refs name plugin programs. Like
// Register, it panics if open is nil or the scheme is taken.
func RegisterScheme(scheme string, open SchemeOpenFunc) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if open == nil {
		panic("engine: RegisterScheme open func is nil")
	}
	if _, dup := schemes[scheme]; dup {
		panic("engine: RegisterScheme called twice for scheme " + scheme)
	}
	schemes[scheme] = open
}

// HasScheme reports whether name is "<scheme>:<ref>" for a registered
// scheme, and returns the scheme and the ref.
func HasScheme(name string) (scheme, ref string, ok bool) {
	scheme, ref, found := strings.Cut(name, ":")
	if !found {
		return "", "", false
	}
	registryMu.RLock()
	_, ok = schemes[scheme]
	registryMu.RUnlock()
	return scheme, ref, ok
}

// Names returns the registered engine names, sorted. Scheme-named
// engines are not listed.
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

// Open opens the engine registered under name, or the one a registered
// scheme opens for "<scheme>:<ref>", with its state under dir. It fills
// defaults into opts and validates them first.
func Open(ctx context.Context, name, dir string, opts Options) (Engine, error) {
	registryMu.RLock()
	open, ok := registry[name]
	var schemeOpen SchemeOpenFunc
	scheme, ref, hasScheme := strings.Cut(name, ":")
	if !ok && hasScheme {
		schemeOpen = schemes[scheme]
	}
	registryMu.RUnlock()
	if !ok && schemeOpen == nil {
		return nil, fmt.Errorf("%w %q (registered: %v)", ErrUnknownEngine, name, Names())
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if schemeOpen != nil {
		return schemeOpen(ctx, ref, dir, opts)
	}
	return open(ctx, dir, opts)
}
