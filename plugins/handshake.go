package plugins

import (
	"context"
	"io"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// ProtocolVersion is the version of the plugin protocol (the service in
// enginepb). A host starts only plugins built for the same version; change
// it whenever the service changes incompatibly.
const ProtocolVersion = 1

// Handshake is what host and plugin check before talking: the cookie keeps
// a plugin program from running as a plain command, the version keeps a
// host from talking to a plugin of another protocol.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "STRATA_ENGINE_PLUGIN",
	MagicCookieValue: "strata-storage-engine",
}

// pluginName is the name the engine is dispensed under.
const pluginName = "engine"

// maxMessageBytes bounds a gRPC message both ways. Reads stream in small
// messages, and the host splits appends, so only a single batch larger than
// the split size makes a message that big.
const maxMessageBytes = 256 << 20

// enginePlugin is the go-plugin glue: the plugin side serves open, the host
// side gets a raw gRPC client.
type enginePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	open   engine.OpenFunc // plugin side only
	stderr io.Writer       // plugin side: the process's stderr
}

var _ plugin.GRPCPlugin = (*enginePlugin)(nil)

func (p *enginePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	enginepb.RegisterEngineServer(s, newServer(p.open, p.stderr))
	return nil
}

func (p *enginePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return enginepb.NewEngineClient(c), nil
}

func pluginMap(open engine.OpenFunc) map[string]plugin.Plugin {
	return map[string]plugin.Plugin{pluginName: &enginePlugin{open: open}}
}
