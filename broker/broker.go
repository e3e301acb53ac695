package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/strata-broker/strata/broker/internal/group"
	"github.com/strata-broker/strata/broker/internal/partition"
	"github.com/strata-broker/strata/broker/internal/replication"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
)

// Options configure a Broker.
type Options struct {
	// Config is the broker's configuration (package config). Listeners,
	// LogDirs and the log defaults are read from it.
	Config config.Config
	// Coordinator holds the cluster metadata; the broker does not close it.
	Coordinator coordination.Coordinator
	// Logger receives the broker's structured logs. Default: slog.Default().
	Logger *slog.Logger
}

// ErrServerClosed is returned by Serve when it is called after Shutdown,
// as net/http's Server.Serve does.
var ErrServerClosed = errors.New("broker: Serve called after Shutdown")

// Broker is a Kafka protocol server over the partition logs it leads.
type Broker struct {
	cfg   config.Config
	coord coordination.Coordinator
	log   *slog.Logger
	// parts holds the partition logs (package partition).
	parts *partition.Manager
	// repl runs the followers' fetchers, the ISR changes and the
	// controlled shutdown (package replication).
	repl *replication.Replicator
	// idem is the producer id allocator (initproducerid.go).
	idem idempotence

	// configMu serialises topic config alterations (alterconfigs.go).
	configMu sync.Mutex
	// groups is the group coordinator (broker/internal/group).
	groups *group.Coordinator

	listeners []net.Listener
	// selves[i] is how clients of listener i reach this broker: its
	// advertised listener with a port of 0 replaced by the bound port
	// (tests listen on port 0). Metadata answers it for this broker, in
	// place of what coordination holds.
	selves []coordination.Broker

	// serveCtx is cancelled by Shutdown: parked fetches answer at once.
	serveCtx    context.Context
	serveCancel context.CancelFunc

	mu       sync.Mutex
	conns    map[*conn]struct{}
	closing  bool
	shutdown chan struct{} // closed by Shutdown; Serve returns
	connWG   sync.WaitGroup
	acceptWG sync.WaitGroup
	served   bool

	closeOnce sync.Once
	closeErr  error
}

// New opens a broker: it binds every listener (so Addrs works before Serve)
// and opens the logs of the partitions this broker holds. It does not
// accept connections until Serve.
func New(opts Options) (*Broker, error) {
	if opts.Coordinator == nil {
		return nil, errors.New("broker: Options.Coordinator is nil")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg := opts.Config
	if len(cfg.Listeners) == 0 {
		return nil, errors.New("broker: no listeners configured")
	}
	if len(cfg.LogDirs) == 0 {
		return nil, errors.New("broker: no log.dirs configured")
	}
	b := &Broker{
		cfg:      cfg,
		coord:    opts.Coordinator,
		log:      opts.Logger.With("broker", opts.Coordinator.BrokerID()),
		conns:    map[*conn]struct{}{},
		shutdown: make(chan struct{}),
	}
	b.serveCtx, b.serveCancel = context.WithCancel(context.Background())

	for _, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))))
		if err != nil {
			b.closeListeners()
			return nil, fmt.Errorf("broker: listener %s: %w", l.Name, err)
		}
		b.listeners = append(b.listeners, ln)
	}
	for i := range b.listeners {
		b.selves = append(b.selves, b.advertised(i))
	}
	// In a cluster, the broker becomes a member (other brokers and
	// clients learn its address) once its listeners are bound.
	if r, ok := opts.Coordinator.(coordination.Registrar); ok {
		ctx, cancel := context.WithTimeout(b.serveCtx, 30*time.Second)
		err := r.Register(ctx, b.selves[0])
		cancel()
		if err != nil {
			b.closeListeners()
			return nil, fmt.Errorf("broker: joining the cluster: %w", err)
		}
	}

	b.repl = replication.New(replication.Options{Config: cfg, Coordinator: b.coord, Logger: b.log, Context: b.serveCtx})
	parts, err := partition.Open(b.serveCtx, partition.Options{
		Config: cfg, Coordinator: b.coord, Replication: b.repl, Logger: b.log, Context: b.serveCtx,
	})
	if err != nil {
		b.serveCancel()
		b.repl.Close()
		b.closeListeners()
		return nil, err
	}
	b.parts = parts
	b.repl.Start(parts)
	store, err := group.OpenStore(b.serveCtx, group.StoreOptions{Config: b.cfg, Coordinator: b.coord, Logs: offsetsLogs{b}, Logger: b.log})
	if err != nil {
		b.serveCancel()
		b.repl.Close()
		parts.Close()
		b.closeListeners()
		return nil, fmt.Errorf("broker: opening the group store: %w", err)
	}
	// Loads every partition of __consumer_offsets in the background;
	// until a group's partition is loaded its requests answer
	// COORDINATOR_LOAD_IN_PROGRESS.
	b.groups = group.New(group.Options{Config: b.cfg, Coordinator: b.coord, Store: store, Logger: b.log.With("component", "groups")})
	return b, nil
}

// advertised resolves the endpoint clients of listener i are told to use:
// its advertised listener (advertised.listeners has one per listener, in
// order; default: the listener itself), with port 0 replaced by the port
// the listener bound and an empty or wildcard host resolved by
// advertisedHost.
func (b *Broker) advertised(i int) coordination.Broker {
	a := b.cfg.Listeners[i]
	if i < len(b.cfg.AdvertisedListeners) {
		a = b.cfg.AdvertisedListeners[i]
	}
	bound := b.listeners[i].Addr().(*net.TCPAddr)
	port := a.Port
	if port == 0 {
		port = int32(bound.Port)
	}
	return coordination.Broker{ID: b.coord.BrokerID(), Host: advertisedHost(a.Host, bound.IP, os.Hostname), Port: port, Rack: b.cfg.BrokerRack}
}

// advertisedHost is host, or for an empty or wildcard one the address the
// listener bound, or, bound to every interface, the machine's name (as
// Kafka does: in a container that is the container's name, which the
// other brokers and clients on its network can resolve), else localhost.
func advertisedHost(host string, bound net.IP, hostname func() (string, error)) string {
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return host
	}
	if !bound.IsUnspecified() {
		return bound.String()
	}
	if name, err := hostname(); err == nil && name != "" {
		return name
	}
	return "localhost"
}

// Addrs returns the addresses the listeners are bound to.
func (b *Broker) Addrs() []net.Addr {
	out := make([]net.Addr, len(b.listeners))
	for i, ln := range b.listeners {
		out[i] = ln.Addr()
	}
	return out
}

// Serve accepts connections on every listener and serves them until ctx is
// done or Shutdown is called. When ctx ends, Serve shuts the broker down
// (with a grace period of 30s for in-flight requests) before returning. It
// returns nil after a shutdown, or the first accept error that is not one.
func (b *Broker) Serve(ctx context.Context) error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		return ErrServerClosed
	}
	if b.served {
		b.mu.Unlock()
		return errors.New("broker: Serve called twice")
	}
	b.served = true
	b.mu.Unlock()

	errc := make(chan error, len(b.listeners))
	for i, ln := range b.listeners {
		b.acceptWG.Add(1)
		go func() {
			defer b.acceptWG.Done()
			errc <- b.accept(ln, i)
		}()
		b.log.Info("serving", "listener", b.cfg.Listeners[i].Name, "addr", ln.Addr().String(),
			"advertised", net.JoinHostPort(b.selves[i].Host, strconv.Itoa(int(b.selves[i].Port))))
	}

	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return b.Shutdown(sctx)
	case <-b.shutdown:
		return nil
	case err := <-errc:
		if err == nil {
			<-b.shutdown
			return nil
		}
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(err, b.Shutdown(sctx))
	}
}

// accept serves one listener until it is closed.
func (b *Broker) accept(ln net.Listener, listener int) error {
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			b.mu.Lock()
			closing := b.closing
			b.mu.Unlock()
			if closing {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: back off, as
				// net/http does, instead of spinning or giving up.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				b.log.Warn("accept", "err", err, "retry_in", delay)
				time.Sleep(delay)
				continue
			}
			return fmt.Errorf("broker: accept on %s: %w", ln.Addr(), err)
		}
		delay = 0
		c := newConn(b, nc, b.selves[listener])
		b.mu.Lock()
		if b.closing {
			b.mu.Unlock()
			nc.Close()
			return nil
		}
		b.conns[c] = struct{}{}
		b.connWG.Add(1)
		b.mu.Unlock()
		go c.serve()
	}
}

func (b *Broker) removeConn(c *conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	b.connWG.Done()
}

func (b *Broker) closeListeners() {
	for _, ln := range b.listeners {
		ln.Close()
	}
}

// Shutdown stops accepting connections, stops reading new requests, lets
// the requests already read finish and their responses be written (parked
// fetches answer at once with what they have), then syncs and closes every
// log and engine. If ctx ends first, connections are closed hard; the logs
// are closed either way. Shutdown is idempotent; later calls return the
// first call's result once it is done.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.closeOnce.Do(func() {
		// In a cluster, leadership moves to other replicas first,
		// while this broker still answers (NOT_LEADER sends clients
		// on).
		b.repl.ControlledShutdown(ctx)
		b.mu.Lock()
		b.closing = true
		conns := make([]*conn, 0, len(b.conns))
		for c := range b.conns {
			conns = append(conns, c)
		}
		b.mu.Unlock()

		b.closeListeners()
		b.acceptWG.Wait()
		b.groups.StopServing()
		b.serveCancel()
		for _, c := range conns {
			c.stopReading()
		}
		done := make(chan struct{})
		go func() { b.connWG.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			b.log.Warn("shutdown: closing connections with requests in flight", "err", ctx.Err())
			b.mu.Lock()
			for c := range b.conns {
				c.nc.Close()
			}
			b.mu.Unlock()
			<-done
		}
		// The connections are done: no request writes to the group
		// store any more. Stop the coordinator's timers, loads and
		// writes before the logs close.
		b.groups.Close()
		b.repl.Close() // no request runs any more: no ISR change starts
		b.closeErr = b.parts.Close()
		close(b.shutdown)
		b.log.Info("shut down", "err", b.closeErr)
	})
	<-b.shutdown
	return b.closeErr
}
