package plugins

import (
	"context"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// ServeInProcess serves the engine open opens over go-plugin's in-process
// gRPC pair (no subprocess) and returns the host side, opened on dir with
// opts, as Open would return it. Plugin authors use it to run
// enginetest.Run on their engine through the boundary, with the engine's
// state in the test process. Closing the engine closes the pair.
func ServeInProcess(t testing.TB, open engine.OpenFunc, dir string, opts engine.Options) (*Engine, error) {
	timeout, err := prepare(&opts)
	if err != nil {
		return nil, err
	}
	client, _ := plugin.TestPluginGRPCConn(t, false, pluginMap(open))
	raw, err := client.Dispense(pluginName)
	if err != nil {
		return nil, err
	}
	// Closing the client shuts the server down through go-plugin's
	// controller service; stopping it here too would race with that.
	kill := func() { client.Close() }
	c := raw.(enginepb.EngineClient)
	if err := initEngine(context.Background(), c, dir, opts, timeout); err != nil {
		kill()
		return nil, err
	}
	return newHostEngine(&proc{c: c, kill: kill}, timeout, "in-process", opts.Logger), nil
}
