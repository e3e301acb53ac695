package plugins

// The host side's process supervision: startProc starts one run of the
// plugin program and Inits its engine; the supervisor starts it again after
// an exit, with backoff (SettingRestartBackoff), and opens the open logs in
// the new run, while calls fail with ErrUnavailable.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/strata-broker/strata/engine"
	"github.com/strata-broker/strata/plugins/enginepb"
)

// Settings (Options.Settings, milliseconds) of the restarts of a plugin
// that exited: the first comes SettingRestartBackoff after the exit, and
// each failed or short-lived run doubles the wait, up to
// SettingRestartBackoffMax.
const (
	SettingRestartBackoff    = "strata.plugin.restart.backoff.ms"
	SettingRestartBackoffMax = "strata.plugin.restart.backoff.max.ms"
)

// Defaults of the restart settings.
const (
	DefaultRestartBackoff    = 250 * time.Millisecond
	DefaultRestartBackoffMax = 30 * time.Second
)

// stableRun is how long a restarted plugin must run before the next exit
// waits only SettingRestartBackoff again.
const stableRun = time.Minute

// exitPoll is how often the supervisor checks whether the plugin process
// is still running, when no call has noticed it died.
const exitPoll = 200 * time.Millisecond

// hostSettings are the settings prefixes the host keeps to itself.
var hostSettings = []string{"strata.plugin.", "strata.plugins."}

// cloneCmd returns an unstarted copy of cmd, for a restart.
func cloneCmd(cmd *exec.Cmd) *exec.Cmd {
	c := exec.Command(cmd.Path, cmd.Args[1:]...)
	c.Args, c.Env, c.Dir = cmd.Args, cmd.Env, cmd.Dir
	c.SysProcAttr = cmd.SysProcAttr
	return c
}

// startProc starts one run of the plugin program and Inits its engine.
func startProc(ctx context.Context, cmd *exec.Cmd, dir string, opts engine.Options, timeout time.Duration) (*proc, error) {
	path := cmd.Path
	setDeathSignal(cmd)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          pluginMap(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		StartTimeout:     timeout,
		Logger:           hclogOver(opts.Logger),
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageBytes),
			grpc.MaxCallSendMsgSize(maxMessageBytes))},
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		if strings.Contains(strings.ToLower(err.Error()), "incompatible api version") {
			return nil, fmt.Errorf("plugins: starting %s: the plugin speaks another protocol than this host (version %d); rebuild it against this Strata: %w", path, ProtocolVersion, err)
		}
		return nil, fmt.Errorf("plugins: starting %s: %w", path, err)
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugins: %s: %w", path, err)
	}
	p := &proc{c: raw.(enginepb.EngineClient), client: client}
	p.kill = func() { client.Kill(); p.releaseShared() }
	if rc := client.ReattachConfig(); rc != nil {
		p.pid = rc.Pid
	}
	if err := initEngine(ctx, p.c, dir, opts, timeout); err != nil {
		client.Kill()
		return nil, fmt.Errorf("plugins: %s: %w", path, err)
	}
	return p, nil
}

// initEngine sends the plugin the engine's directory and options.
func initEngine(ctx context.Context, c enginepb.EngineClient, dir string, opts engine.Options, timeout time.Duration) error {
	settings := maps.Clone(opts.Settings)
	maps.DeleteFunc(settings, func(k, _ string) bool {
		return slices.ContainsFunc(hostSettings, func(p string) bool { return strings.HasPrefix(k, p) })
	})
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	_, err := c.Init(ctx, &enginepb.InitRequest{Dir: dir, Log: logOptionsToPB(opts.Log), Settings: settings})
	return fromStatus(ctx, "Init", err)
}

// proc is one run of the plugin: its connection and, when Open started
// it, its process.
type proc struct {
	c      enginepb.EngineClient
	client *plugin.Client // nil over the in-process pair
	kill   func()
	pid    int
	gen    uint64 // which run this is, from 1

	// shm is the run's shared region for append batches, set up by the
	// first append (nil if it could not be), and lanes carry the appends
	// whose batches lie there; releaseShared ends both.
	shmOnce sync.Once
	shm     *shmRegion
	lanes   lanes
}

// region returns p's shared region, asking the plugin to map it at the
// first call; nil if either side cannot.
func (p *proc) region(e *Engine) *shmRegion {
	p.shmOnce.Do(func() {
		b, path, f, err := createShared(shmBytes)
		if err != nil {
			e.log.Debug("plugin appends carry their bytes", "plugin", e.path, "err", err)
			return
		}
		defer f.Close()
		ctx, cancel := e.callContext(context.Background())
		defer cancel()
		if _, err := p.c.Share(ctx, &enginepb.ShareRequest{Path: path, Size: int64(len(b))}); err != nil {
			unmapShared(b)
			e.log.Debug("plugin appends carry their bytes", "plugin", e.path, "err", err)
			return
		}
		p.shm = newShmRegion(b, unmapShared)
	})
	return p.shm
}

// releaseShared unmaps p's shared region once no append uses it, and keeps
// p from setting one up after.
func (p *proc) releaseShared() {
	p.shmOnce.Do(func() {})
	p.lanes.close()
	if p.shm != nil {
		p.shm.close()
	}
}

// exited reports whether the process has exited.
func (p *proc) exited() bool { return p.client != nil && p.client.Exited() }

// proc returns the running plugin.
func (e *Engine) proc() (*proc, error) {
	if e.closed.Load() {
		return nil, e.errClosed()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cur == nil {
		return nil, fmt.Errorf("%w: %s is down and being restarted", ErrUnavailable, e.path)
	}
	return e.cur, nil
}

// result turns the error of a call to p into the error the host returns,
// and hands p to the supervisor if the call found it gone.
func (e *Engine) result(ctx context.Context, p *proc, method string, err error) error {
	err = fromStatus(ctx, method, err)
	if errors.Is(err, ErrUnavailable) {
		e.lost(p)
	}
	return err
}

// lost tells the supervisor that p stopped answering.
func (e *Engine) lost(p *proc) {
	if e.start == nil {
		return
	}
	e.mu.Lock()
	if e.cur == p {
		e.cur = nil
		e.gen.Store(0)
	}
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// supervise restarts the plugin whenever its process exits or a call
// finds it gone, until Close.
func (e *Engine) supervise() {
	defer close(e.supervised)
	poll := time.NewTicker(exitPoll)
	defer poll.Stop()
	backoff := e.backoff
	e.mu.Lock()
	p := e.cur
	e.mu.Unlock()
	up := time.Now()
	for {
		select {
		case <-e.stopCtx.Done():
			return
		case <-e.kick:
		case <-poll.C:
		}
		e.mu.Lock()
		alive := e.cur == p && !p.exited()
		if !alive && e.cur == p {
			e.cur = nil
			e.gen.Store(0)
		}
		e.mu.Unlock()
		if alive {
			continue
		}
		p.kill()
		if time.Since(up) >= stableRun {
			backoff = e.backoff
		}
		e.log.Error("plugin exited; restarting", "plugin", e.path, "pid", p.pid, "run", p.gen, "backoff", backoff)
		for {
			select {
			case <-e.stopCtx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, e.maxBackoff)
			np, err := e.start(e.stopCtx)
			if err != nil {
				if e.stopCtx.Err() != nil {
					return
				}
				e.log.Error("plugin restart failed; retrying", "plugin", e.path, "err", err, "backoff", backoff)
				continue
			}
			np.gen = p.gen + 1
			p = np
			break
		}
		// The open logs are opened in the new process before calls
		// reach it, so none answers Offsets from before the restart.
		e.mu.Lock()
		logs := slices.Collect(maps.Keys(e.logs))
		e.mu.Unlock()
		reopened := 0
		for _, l := range logs {
			if l.reopen(e.stopCtx, p) == nil {
				reopened++
			}
		}
		e.mu.Lock()
		if e.closed.Load() {
			e.mu.Unlock()
			p.kill()
			return
		}
		e.cur = p
		e.gen.Store(p.gen)
		e.mu.Unlock()
		up = time.Now()
		e.log.Info("plugin restarted", "plugin", e.path, "pid", p.pid, "run", p.gen, "logs", len(logs), "reopened", reopened)
	}
}
