package zk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/engine"
)

// Options configure a ZooKeeper coordinator.
type Options struct {
	// Connect is zookeeper.connect: host:port[,host:port...][/chroot].
	Connect string
	// SessionTimeout is zookeeper.session.timeout.ms. Default 18s.
	SessionTimeout time.Duration
	// ConnectionTimeout is how long Open waits for a session
	// (zookeeper.connection.timeout.ms). Default SessionTimeout.
	ConnectionTimeout time.Duration
	// BrokerID is broker.id; -1 takes the id stored in the log dirs'
	// meta.properties, or a generated one.
	BrokerID int32
	// GenerateBrokerID (broker.id.generation.enable) lets a broker
	// without a configured or stored id take one from ZooKeeper, above
	// ReservedBrokerMaxID.
	GenerateBrokerID    bool
	ReservedBrokerMaxID int32
	// LogDirs each hold meta.properties naming the cluster and broker.
	LogDirs []string
	// Advertised is this broker as clients reach it; its ID is ignored.
	// With port 0 (a listener on a port the broker has yet to bind),
	// Open does not register the broker: Register does, once the port is
	// known.
	Advertised coordination.Broker
	// Listener is the name of the advertised listener. Default PLAINTEXT.
	Listener string
	// DefaultPartitions and DefaultReplicationFactor serve -1 counts.
	DefaultPartitions        int32
	DefaultReplicationFactor int16
	// ProducerIDBlockSize is the size of NextProducerIDBlock's blocks.
	// Default 1000, as Kafka's.
	ProducerIDBlockSize int64
	// UncleanLeaderElection is unclean.leader.election.enable: when no
	// in-sync replica of a partition is alive, the controller elects
	// the first live replica (losing what it had not copied) instead of
	// leaving the partition offline. A topic's config override of the
	// same name takes precedence. Default false.
	UncleanLeaderElection bool
	// AutoLeaderRebalance is auto.leader.rebalance.enable: every
	// LeaderImbalanceCheckInterval the controller hands leadership back
	// to preferred replicas (the first of each partition's replicas) of
	// brokers that lead less than they should. The zero value is off;
	// the broker's config turns it on by default, as Kafka's.
	AutoLeaderRebalance bool
	// LeaderImbalanceCheckInterval is
	// leader.imbalance.check.interval.seconds. Default 300s.
	LeaderImbalanceCheckInterval time.Duration
	// LeaderImbalancePerBrokerPercentage is
	// leader.imbalance.per.broker.percentage: a preferred broker is
	// rebalanced when more than this share of the partitions it prefers
	// are led by others. 0 means the default, 10; Kafka's 0 (any
	// imbalance at all) is a negative value here.
	LeaderImbalancePerBrokerPercentage int
	// ValidateTopicConfigs checks a topic's config overrides; it is called
	// for every topic creation and config change. Its error is returned
	// wrapped, so that errors.Is matches both coordination.ErrInvalidConfig
	// and its own error. nil: every config is accepted.
	ValidateTopicConfigs func(configs map[string]string) error
	Logger               *slog.Logger
}

func (o *Options) ensureDefaults() {
	if o.SessionTimeout <= 0 {
		o.SessionTimeout = 18 * time.Second
	}
	if o.ConnectionTimeout <= 0 {
		o.ConnectionTimeout = o.SessionTimeout
	}
	if o.Listener == "" {
		o.Listener = "PLAINTEXT"
	}
	if o.DefaultPartitions <= 0 {
		o.DefaultPartitions = 1
	}
	if o.DefaultReplicationFactor <= 0 {
		o.DefaultReplicationFactor = 1
	}
	if o.ProducerIDBlockSize <= 0 {
		o.ProducerIDBlockSize = 1000
	}
	if o.ReservedBrokerMaxID <= 0 {
		o.ReservedBrokerMaxID = 1000
	}
	if o.LeaderImbalanceCheckInterval <= 0 {
		o.LeaderImbalanceCheckInterval = 300 * time.Second
	}
	if o.LeaderImbalancePerBrokerPercentage == 0 {
		o.LeaderImbalancePerBrokerPercentage = 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// ParseConnect splits zookeeper.connect into its servers and chroot ("" for
// none).
func ParseConnect(s string) (servers []string, chroot string, err error) {
	hosts, root, hasRoot := strings.Cut(s, "/")
	if hasRoot {
		chroot = "/" + root
		if root == "" || strings.HasSuffix(root, "/") || strings.Contains(root, "//") {
			return nil, "", fmt.Errorf("zookeeper.connect %q: chroot must be a path such as /strata", s)
		}
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			servers = append(servers, h)
		}
	}
	if len(servers) == 0 {
		return nil, "", fmt.Errorf("zookeeper.connect %q names no server", s)
	}
	return servers, chroot, nil
}

// ZK is a coordination.Coordinator over ZooKeeper.
type ZK struct {
	opts   Options
	log    *slog.Logger
	conn   *zk.Conn
	chroot string

	brokerID  int32
	clusterID string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// session is the ZooKeeper session the broker's registration and
	// watches belong to; a new one (after expiry) makes the broker
	// register again.
	session    atomic.Int64
	newSession chan struct{} // cap 1
	// self is this broker as registered; nil until registered.
	self      atomic.Pointer[coordination.Broker]
	connected atomic.Bool // has a session now; for logging changes only

	cache
	ctl controller

	closeOnce sync.Once
	closed    atomic.Bool
}

var (
	_ coordination.Coordinator = (*ZK)(nil)
	_ coordination.Registrar   = (*ZK)(nil)
	_ coordination.Replication = (*ZK)(nil)
)

// Open connects to ZooKeeper, settles the broker's identity with the log
// dirs' meta.properties, registers the broker, and starts following the
// cluster's metadata (and standing for controller).
func Open(ctx context.Context, opts Options) (*ZK, error) {
	opts.ensureDefaults()
	servers, chroot, err := ParseConnect(opts.Connect)
	if err != nil {
		return nil, err
	}
	z := &ZK{opts: opts, log: opts.Logger.With("component", "coordination/zk"), chroot: chroot,
		newSession: make(chan struct{}, 1)}
	z.ctx, z.cancel = context.WithCancel(context.Background())
	z.cache.init()
	connected := make(chan struct{}, 1)
	conn, _, err := zk.Connect(servers, opts.SessionTimeout,
		zk.WithLogger(zkLogger{z.log}),
		zk.WithEventCallback(func(ev zk.Event) { z.onEvent(ev, connected) }))
	if err != nil {
		return nil, fmt.Errorf("coordination/zk: %w", err)
	}
	z.conn = conn
	fail := func(err error) (*ZK, error) {
		z.cancel()
		conn.Close()
		return nil, err
	}
	timer := time.NewTimer(opts.ConnectionTimeout)
	defer timer.Stop()
	select {
	case <-connected:
	case <-timer.C:
		return fail(fmt.Errorf("coordination/zk: no ZooKeeper session with %s within %v (zookeeper.connection.timeout.ms)", opts.Connect, opts.ConnectionTimeout))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if err := z.setup(); err != nil {
		return fail(err)
	}
	z.session.Store(conn.SessionID())
	if opts.Advertised.Port > 0 {
		self := opts.Advertised
		self.ID = z.brokerID
		z.self.Store(&self)
		if err := z.register(); err != nil {
			return fail(err)
		}
	}
	z.markDirty()
	z.wg.Add(3)
	go z.refreshLoop()
	go z.sessionLoop()
	go z.controllerLoop()
	// The first snapshot, so the broker starts with the cluster's view.
	if err := z.waitSnapshot(ctx); err != nil {
		z.Close()
		return nil, err
	}
	z.log.Info("joined cluster", "cluster_id", z.clusterID, "broker_id", z.brokerID, "zookeeper", opts.Connect)
	return z, nil
}

// onEvent follows the session's state; it runs on the client's event
// goroutine and must not block.
func (z *ZK) onEvent(ev zk.Event, connected chan struct{}) {
	if ev.Type != zk.EventSession {
		return
	}
	switch ev.State {
	case zk.StateHasSession:
		z.connected.Store(true)
		select {
		case connected <- struct{}{}:
		default:
		}
		select {
		case z.newSession <- struct{}{}:
		default:
		}
	case zk.StateExpired:
		z.log.Warn("ZooKeeper session expired; will register again on the next session")
	case zk.StateDisconnected:
		if z.connected.Swap(false) && !z.closed.Load() {
			z.log.Warn("disconnected from ZooKeeper; serving from the last known metadata")
		}
	}
}

// sessionLoop registers the broker again, and stands for controller again,
// whenever the client got a new session (the old one expired).
func (z *ZK) sessionLoop() {
	defer z.wg.Done()
	for {
		select {
		case <-z.ctx.Done():
			return
		case <-z.newSession:
		}
		id := z.conn.SessionID()
		if id == 0 || id == z.session.Load() {
			continue
		}
		z.log.Info("new ZooKeeper session; registering again", "session", fmt.Sprintf("%#x", id))
		for z.ctx.Err() == nil && z.self.Load() != nil {
			err := z.register()
			if err == nil {
				z.session.Store(id)
				break
			}
			z.log.Error("registering with ZooKeeper", "err", err)
			if !z.sleep(time.Second) {
				return
			}
		}
		z.ctl.resign(z, "new session")
		z.markDirty()
	}
}

// sleep waits d or until Close; it reports whether to go on.
func (z *ZK) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-z.ctx.Done():
		return false
	}
}

// p returns path under the chroot.
func (z *ZK) p(path string) string { return z.chroot + path }

var acl = zk.WorldACL(zk.PermAll)

// setup creates the chroot and Kafka's persistent paths, and settles the
// cluster id and the broker id.
func (z *ZK) setup() error {
	if z.chroot != "" {
		parts := strings.Split(strings.TrimPrefix(z.chroot, "/"), "/")
		for i := range parts {
			if err := z.ensure("/" + strings.Join(parts[:i+1], "/")); err != nil {
				return err
			}
		}
	}
	for _, path := range persistentPaths {
		if err := z.ensure(z.p(path)); err != nil {
			return err
		}
	}
	metas, err := readMetas(z.opts.LogDirs)
	if err != nil {
		return err
	}
	if z.clusterID, err = z.clusterIDFromZK(); err != nil {
		return err
	}
	var stored int32 = -1
	for dir, m := range metas {
		if m.ClusterID != z.clusterID {
			return fmt.Errorf("coordination/zk: log dir %s belongs to cluster %s, but the cluster in ZooKeeper (%s) is %s: this directory holds another cluster's data; point log.dirs elsewhere or empty it",
				dir, m.ClusterID, z.opts.Connect, z.clusterID)
		}
		if stored >= 0 && m.BrokerID != stored {
			return fmt.Errorf("coordination/zk: the log dirs name different brokers (%d and %d) in their meta.properties", stored, m.BrokerID)
		}
		stored = m.BrokerID
	}
	switch {
	case z.opts.BrokerID >= 0 && stored >= 0 && z.opts.BrokerID != stored:
		return fmt.Errorf("coordination/zk: configured broker.id %d doesn't match stored broker.id %d in meta.properties; if you moved your data, configure broker.id=%d", z.opts.BrokerID, stored, stored)
	case z.opts.BrokerID >= 0:
		if stored < 0 && z.opts.GenerateBrokerID && z.opts.BrokerID > z.opts.ReservedBrokerMaxID {
			return fmt.Errorf("coordination/zk: broker.id %d is above reserved.broker.max.id %d, the range of generated ids", z.opts.BrokerID, z.opts.ReservedBrokerMaxID)
		}
		z.brokerID = z.opts.BrokerID
	case stored >= 0:
		z.brokerID = stored
	case z.opts.GenerateBrokerID:
		st, err := z.conn.Set(z.p(pathBrokerSeqID), nil, -1)
		if errors.Is(err, zk.ErrNoNode) {
			if err = z.ensure(z.p(pathBrokerSeqID)); err == nil {
				st, err = z.conn.Set(z.p(pathBrokerSeqID), nil, -1)
			}
		}
		if err != nil {
			return fmt.Errorf("coordination/zk: generating a broker id: %w", err)
		}
		z.brokerID = z.opts.ReservedBrokerMaxID + st.Version
		z.log.Info("generated broker id", "broker_id", z.brokerID)
	default:
		return errors.New("coordination/zk: broker.id is not set, none is stored in the log dirs, and broker.id.generation.enable is false")
	}
	meta := coordination.MetaProperties{BrokerID: z.brokerID, ClusterID: z.clusterID}
	for _, dir := range z.opts.LogDirs {
		if _, ok := metas[dir]; ok {
			continue
		}
		if err := writeMeta(dir, meta); err != nil {
			return err
		}
	}
	return nil
}

// ensure creates a persistent znode if it does not exist.
func (z *ZK) ensure(path string) error {
	_, err := z.conn.Create(path, nil, 0, acl)
	if err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("coordination/zk: creating %s: %w", path, err)
	}
	return nil
}

// clusterIDFromZK reads /cluster/id, creating it for a new cluster.
func (z *ZK) clusterIDFromZK() (string, error) {
	for range 3 {
		data, _, err := z.conn.Get(z.p(pathClusterID))
		if err == nil {
			var n clusterIDZNode
			if err := json.Unmarshal(data, &n); err != nil || n.ID == "" {
				return "", fmt.Errorf("coordination/zk: %s holds %q, not a cluster id", pathClusterID, data)
			}
			return n.ID, nil
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return "", fmt.Errorf("coordination/zk: reading %s: %w", pathClusterID, err)
		}
		id, err := coordination.NewTopicID()
		if err != nil {
			return "", err
		}
		data = marshal(clusterIDZNode{Version: "1", ID: id.String()})
		if _, err := z.conn.Create(z.p(pathClusterID), data, 0, acl); err == nil {
			z.log.Info("new cluster", "cluster_id", id.String())
			return id.String(), nil
		} else if !errors.Is(err, zk.ErrNodeExists) {
			return "", fmt.Errorf("coordination/zk: creating %s: %w", pathClusterID, err)
		}
	}
	return "", fmt.Errorf("coordination/zk: %s keeps changing", pathClusterID)
}

// Register implements coordination.Registrar: it registers the broker
// with the address clients reach it at (its ID is ignored), if Open did
// not.
func (z *ZK) Register(ctx context.Context, self coordination.Broker) error {
	if z.closed.Load() {
		return coordination.ErrClosed
	}
	self.ID = z.brokerID
	z.self.Store(&self)
	if err := z.register(); err != nil {
		return err
	}
	z.markDirty()
	// Wait until this broker sees itself live, so it is a member of
	// the cluster when Register returns.
	z.waitFor(ctx, func(s *coordination.Snapshot) bool {
		return slices.ContainsFunc(s.Brokers, func(b coordination.Broker) bool { return b == self })
	})
	return nil
}

// register creates this broker's ephemeral /brokers/ids/<id>. A
// registration of another session is waited out for a session timeout: it
// is most likely this broker's own from before a crash, which ZooKeeper
// removes when that session expires.
func (z *ZK) register() error {
	self := *z.self.Load()
	data := encodeBroker(self, z.opts.Listener, time.Now())
	path := z.p(brokerPath(z.brokerID))
	deadline := time.Now().Add(z.opts.SessionTimeout + 2*time.Second)
	for {
		_, err := z.conn.Create(path, data, zk.FlagEphemeral, acl)
		if !errors.Is(err, zk.ErrNodeExists) {
			if err != nil {
				return fmt.Errorf("coordination/zk: registering %s: %w", brokerPath(z.brokerID), err)
			}
			return nil
		}
		exists, st, ch, err := z.conn.ExistsW(path)
		switch {
		case err != nil:
			return fmt.Errorf("coordination/zk: registering %s: %w", brokerPath(z.brokerID), err)
		case !exists:
			continue
		case st.EphemeralOwner == z.conn.SessionID():
			// Ours already (a retry after a lost answer): refresh it.
			if _, err := z.conn.Set(path, data, st.Version); err != nil {
				return fmt.Errorf("coordination/zk: registering %s: %w", brokerPath(z.brokerID), err)
			}
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("coordination/zk: broker id %d is registered by another live broker (%s exists); every broker needs its own broker.id", z.brokerID, brokerPath(z.brokerID))
		}
		z.log.Info("waiting for an earlier registration of this broker id to expire", "path", brokerPath(z.brokerID))
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ch:
		case <-t.C:
		case <-z.ctx.Done():
			t.Stop()
			return coordination.ErrClosed
		}
		t.Stop()
	}
}

// readMetas reads meta.properties of every log dir that has one.
func readMetas(dirs []string) (map[string]coordination.MetaProperties, error) {
	out := map[string]coordination.MetaProperties{}
	for _, dir := range dirs {
		path := filepath.Join(dir, coordination.MetaPropertiesFile)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("coordination/zk: %w", err)
		}
		m, err := coordination.DecodeMetaProperties(data)
		if err != nil {
			return nil, fmt.Errorf("coordination/zk: %s: %w", path, err)
		}
		out[dir] = m
	}
	return out, nil
}

// writeMeta writes meta.properties into dir atomically.
func writeMeta(dir string, m coordination.MetaProperties) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("coordination/zk: %w", err)
	}
	if err := coordination.WriteAtomic(engine.OSFS, dir, coordination.MetaPropertiesFile, m.Encode()); err != nil {
		return fmt.Errorf("coordination/zk: writing %s: %w", filepath.Join(dir, coordination.MetaPropertiesFile), err)
	}
	return nil
}

// BrokerID implements coordination.Coordinator.
func (z *ZK) BrokerID() int32 { return z.brokerID }

// ClusterID returns the cluster's id, from /cluster/id.
func (z *ZK) ClusterID() string { return z.clusterID }

// Close implements coordination.Coordinator: it closes the session, which
// removes the broker's registration (and its controllership) at once.
func (z *ZK) Close() error {
	z.closeOnce.Do(func() {
		z.closed.Store(true)
		z.cancel()
		z.wg.Wait()
		z.conn.Close()
	})
	return nil
}

// zkLogger routes the client's log lines to slog, at debug level: the
// coordinator logs what matters itself.
type zkLogger struct{ l *slog.Logger }

func (z zkLogger) Printf(format string, args ...any) { z.l.Debug(fmt.Sprintf(format, args...)) }
