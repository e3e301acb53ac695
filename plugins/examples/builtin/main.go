// Command builtin serves one of Strata's built-in engines as a plugin, so
// the cost of the process boundary can be measured against the same engine
// in process:
//
//	builtin [ENGINE]
//
// ENGINE is a registered engine's name, mmap when left out, so a broker can
// name the program alone (strata.plugins.<name>.path). Run by hand, it only
// says that it is a plugin.
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
	name := "mmap"
	switch len(os.Args) {
	case 1:
	case 2:
		name = os.Args[1]
	default:
		fmt.Fprintf(os.Stderr, "usage: builtin [ENGINE] (one of %v; default mmap)\n", engine.Names())
		os.Exit(2)
	}
	plugins.Serve(func(ctx context.Context, dir string, opts engine.Options) (engine.Engine, error) {
		return engine.Open(ctx, name, dir, opts)
	})
}
