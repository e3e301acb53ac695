// Command builtin serves one of Strata's built-in engines as a plugin, so
// the cost of the process boundary can be measured against the same engine
// in process:
//
//	builtin mmap
//
// The host starts it (plugins.OpenCommand with the engine's name as the
// argument); run by hand, it only says that it is a plugin.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/strata-broker/strata/engine"
	_ "github.com/strata-broker/strata/engines/lsm"
	_ "github.com/strata-broker/strata/engines/mem"
	_ "github.com/strata-broker/strata/engines/mmap"
	_ "github.com/strata-broker/strata/engines/tiered"
	"github.com/strata-broker/strata/plugins"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: builtin ENGINE (one of %v)\n", engine.Names())
		os.Exit(2)
	}
	name := os.Args[1]
	plugins.Serve(func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
		return engine.Open(ctx, name, dir, opts)
	})
}
