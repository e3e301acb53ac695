// Command strata is the Strata broker: a Kafka-compatible message broker
// whose partition logs live in swappable storage engines.
//
//	strata serve [server.properties] [--override key=value]...
//
// runs a broker. With no zookeeper.connect it runs alone, with its cluster
// metadata kept by the embedded coordination in the first log dir.
// Configuration comes from Kafka's keys, weakest first: defaults, the
// properties file, the environment (KAFKA_LOG_DIRS → log.dirs, as Kafka's
// Docker images read it; KAFKA_CREATE_TOPICS), then --override. SIGINT or
// SIGTERM shuts the broker down cleanly (exit 0). A bad configuration is
// reported naming the key (exit 2).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/strata-broker/strata/broker"
	"github.com/strata-broker/strata/config"
	"github.com/strata-broker/strata/coordination"
	"github.com/strata-broker/strata/coordination/local"
	"github.com/strata-broker/strata/coordination/zk"
	"github.com/strata-broker/strata/engine"

	// The engines a broker can use (log.engine, strata.engine).
	_ "github.com/strata-broker/strata/engines/lsm"
	_ "github.com/strata-broker/strata/engines/mem"
	_ "github.com/strata-broker/strata/engines/mmap"
	_ "github.com/strata-broker/strata/engines/tiered"
	_ "github.com/strata-broker/strata/plugins" // log.engine=plugin:...
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the broker failed while running
	exitUsage  = 2 // bad command line or configuration
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `strata: a Kafka-compatible message broker with swappable storage engines

Usage:
  strata serve [server.properties] [--override key=value]...
  strata serve --help       list the configuration keys
  strata --help

Configuration, weakest first: defaults, the properties file, the
environment (KAFKA_<KEY> as Kafka's Docker images, e.g. KAFKA_LOG_DIRS;
STRATA_<KEY> for strata.* keys; KAFKA_CREATE_TOPICS=name:partitions:replicas,...),
then --override key=value.
`

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "serve":
		return serve(ctx, args[1:], env, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "strata: unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
}

// serveArgs is the parsed command line of strata serve.
type serveArgs struct {
	properties string
	overrides  []string
	help       bool
}

func parseServeArgs(args []string) (serveArgs, error) {
	var sa serveArgs
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-h" || a == "-help" || a == "--help":
			sa.help = true
		case a == "--override" || a == "-override":
			if i+1 >= len(args) {
				return sa, fmt.Errorf("%s needs key=value", a)
			}
			i++
			sa.overrides = append(sa.overrides, args[i])
		case strings.HasPrefix(a, "--override=") || strings.HasPrefix(a, "-override="):
			sa.overrides = append(sa.overrides, a[strings.IndexByte(a, '=')+1:])
		case strings.HasPrefix(a, "-"):
			return sa, fmt.Errorf("unknown flag %s", a)
		case sa.properties != "":
			return sa, fmt.Errorf("more than one properties file: %s and %s", sa.properties, a)
		default:
			sa.properties = a
		}
	}
	return sa, nil
}

func serve(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	sa, err := parseServeArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "strata serve: %v\n\n%s", err, usage)
		return exitUsage
	}
	if sa.help {
		serveHelp(stdout)
		return exitOK
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	cfg, err := config.Load(config.Source{PropertiesFile: sa.properties, Env: env, Overrides: sa.overrides, Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "strata serve: %v\n", err)
		return exitUsage
	}
	coord, err := openCoordination(ctx, cfg, log)
	if err != nil {
		log.Error("opening the cluster metadata", "err", err)
		return exitFailed
	}
	defer coord.Close()

	b, err := broker.New(broker.Options{Config: cfg, Coordinator: coord, Logger: log})
	if err != nil {
		log.Error("starting the broker", "err", err)
		return exitFailed
	}
	// After New: in a cluster, this broker is then registered and can
	// hold the topics' partitions. A cluster creates them in the
	// background, waiting for as many brokers as their replicas need.
	if _, cluster := coord.(coordination.Registrar); cluster && len(cfg.CreateTopics) > 0 {
		go func() {
			// Brokers of a cluster start together: placing the topics
			// once the membership has settled spreads them over all.
			awaitSettled(ctx, coord, topicSettle)
			if err := createTopics(ctx, coord, cfg.CreateTopics, log); err != nil {
				log.Error("creating KAFKA_CREATE_TOPICS topics", "err", err)
			}
		}()
	} else if err := createTopics(ctx, coord, cfg.CreateTopics, log); err != nil {
		log.Error("creating KAFKA_CREATE_TOPICS topics", "err", err)
		b.Shutdown(ctx)
		return exitUsage
	}
	// Serve shuts the broker down when ctx ends (SIGINT, SIGTERM).
	if err := b.Serve(ctx); err != nil {
		log.Error("broker stopped", "err", err)
		return exitFailed
	}
	return exitOK
}

// createTopic creates one start-up topic. In a cluster, too few brokers
// for its replicas, or metadata not reachable yet, are waited out for up
// to topicStartupWait.
func createTopic(ctx context.Context, coord coordination.Coordinator, spec coordination.TopicSpec) error {
	ctx, cancel := context.WithTimeout(ctx, topicStartupWait)
	defer cancel()
	for {
		snap := coord.Snapshot()
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := coord.CreateTopic(cctx, spec, false)
		ccancel()
		_, cluster := coord.(coordination.Registrar)
		if !cluster || !(errors.Is(err, coordination.ErrInvalidReplication) || errors.Is(err, coordination.ErrMetadataUnavailable)) {
			return err
		}
		select {
		case <-coord.Changed(snap.Version):
		case <-ctx.Done():
			return err
		}
	}
}

// topicSettle is how long a cluster's membership must stay unchanged
// before a starting broker places its KAFKA_CREATE_TOPICS topics.
const topicSettle = 3 * time.Second

// awaitSettled waits until the cluster's brokers have not changed for d,
// or ctx ends, or topicStartupWait passes.
func awaitSettled(ctx context.Context, coord coordination.Coordinator, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, topicStartupWait)
	defer cancel()
	snap := coord.Snapshot()
	brokers := snap.Brokers
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-ctx.Done():
			return
		case <-coord.Changed(snap.Version):
			snap = coord.Snapshot()
			if !slices.Equal(brokers, snap.Brokers) {
				brokers = snap.Brokers
				t.Reset(d)
			}
		}
	}
}

// topicStartupWait bounds how long a cluster's broker waits to create its
// KAFKA_CREATE_TOPICS topics.
const topicStartupWait = 5 * time.Minute

// openCoordination opens the cluster's coordination: ZooKeeper's with
// zookeeper.connect, else the embedded one of a broker alone.
func openCoordination(ctx context.Context, cfg config.Config, log *slog.Logger) (coordination.Coordinator, error) {
	adv := cfg.Listeners[0]
	if len(cfg.AdvertisedListeners) > 0 {
		adv = cfg.AdvertisedListeners[0]
	}
	self := coordination.Broker{Host: adv.Host, Port: adv.Port, Rack: cfg.BrokerRack}
	if cfg.ZookeeperConnect == "" {
		return local.Open(ctx, local.Options{
			Dir:                      cfg.LogDirs[0],
			BrokerID:                 cfg.BrokerID,
			Advertised:               self,
			DefaultPartitions:        cfg.NumPartitions,
			DefaultReplicationFactor: cfg.DefaultReplicationFactor,
			ValidateTopicConfigs:     config.ValidateTopicConfigs,
			Logger:                   log,
		})
	}
	// The broker registers itself once its listeners are bound (port 0
	// is only known then, and a wildcard host is resolved then).
	return zk.Open(ctx, zk.Options{
		Connect:                            cfg.ZookeeperConnect,
		SessionTimeout:                     cfg.ZookeeperSessionTimeoutMs,
		ConnectionTimeout:                  cfg.ZookeeperConnectionTimeoutMs,
		BrokerID:                           cfg.BrokerID,
		GenerateBrokerID:                   cfg.BrokerIDGeneration,
		ReservedBrokerMaxID:                cfg.ReservedBrokerMaxID,
		LogDirs:                            cfg.LogDirs,
		Listener:                           adv.Name,
		DefaultPartitions:                  cfg.NumPartitions,
		DefaultReplicationFactor:           cfg.DefaultReplicationFactor,
		UncleanLeaderElection:              cfg.UncleanLeaderElectionEnable,
		AutoLeaderRebalance:                cfg.AutoLeaderRebalanceEnable,
		LeaderImbalanceCheckInterval:       cfg.LeaderImbalanceCheckIntervalSeconds,
		LeaderImbalancePerBrokerPercentage: imbalancePercentage(cfg.LeaderImbalancePerBrokerPercentage),
		ValidateTopicConfigs:               config.ValidateTopicConfigs,
		Logger:                             log,
	})
}

// createTopics creates the start-up topics (KAFKA_CREATE_TOPICS) that do
// not exist yet.
func createTopics(ctx context.Context, coord coordination.Coordinator, specs []config.TopicSpec, log *slog.Logger) error {
	for _, s := range specs {
		spec := coordination.TopicSpec{Name: s.Name, Partitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		if s.CleanupPolicy != "" {
			spec.Configs = map[string]string{"cleanup.policy": s.CleanupPolicy}
		}
		err := createTopic(ctx, coord, spec)
		switch {
		case err == nil:
			log.Info("created topic", "topic", s.Name, "partitions", s.Partitions, "replication_factor", s.ReplicationFactor)
		case errors.Is(err, coordination.ErrTopicExists):
			if t := coord.Snapshot().Topics[s.Name]; t != nil {
				if diff := shapeDiffers(t, s); diff != "" {
					log.Warn("a KAFKA_CREATE_TOPICS topic exists with another shape; left as it is", "topic", s.Name, "declared", specText(s), "differs", diff)
				}
			}
		default:
			return fmt.Errorf("%s: %w", s.Name, err)
		}
	}
	return nil
}

// shapeDiffers says how topic t differs from what spec declares: its
// partition count, replication factor or cleanup.policy; "" if it does
// not.
func shapeDiffers(t *coordination.Topic, spec config.TopicSpec) string {
	var diffs []string
	if n := int32(len(t.Partitions)); n != spec.Partitions {
		diffs = append(diffs, fmt.Sprintf("%d partitions", n))
	}
	if len(t.Partitions) > 0 {
		if rf := int16(len(t.Partitions[0].Replicas)); rf != spec.ReplicationFactor {
			diffs = append(diffs, fmt.Sprintf("replication factor %d", rf))
		}
	}
	switch cur := t.Configs["cleanup.policy"]; {
	case spec.CleanupPolicy == "" || cur == spec.CleanupPolicy:
	case cur == "":
		diffs = append(diffs, "no cleanup.policy override")
	default:
		diffs = append(diffs, "cleanup.policy "+cur)
	}
	return strings.Join(diffs, ", ")
}

// specText is a KAFKA_CREATE_TOPICS entry as it is written.
func specText(s config.TopicSpec) string {
	text := fmt.Sprintf("%s:%d:%d", s.Name, s.Partitions, s.ReplicationFactor)
	if s.CleanupPolicy != "" {
		text += ":" + s.CleanupPolicy
	}
	return text
}

func serveHelp(w io.Writer) {
	fmt.Fprint(w, usage)
	fmt.Fprintf(w, "\nEngines linked in (log.engine, strata.engine): %s, and plugin programs:\n", strings.Join(engine.Names(), ", "))
	fmt.Fprint(w, "plugin:<name> for a plugin declared with strata.plugins.<name>.path=<program>,\n"+
		"or (log.engine only) plugin:<program>. A plugin that exits is restarted after\n"+
		"strata.plugin.restart.backoff.ms (250), doubling up to strata.plugin.restart.backoff.max.ms\n"+
		"(30000); a call to it fails after strata.plugin.call.timeout.ms (30000).\n\nConfiguration keys:\n\n")
	for _, k := range config.Keys() {
		def := k.Default
		if def == "" {
			def = "none"
		}
		fmt.Fprintf(w, "  %s (default: %s)\n      %s\n", k.Name, def, k.Doc)
	}
}

// imbalancePercentage maps leader.imbalance.per.broker.percentage to the
// ZooKeeper coordinator's option, where 0 means its default and any
// imbalance is asked for with a negative value.
func imbalancePercentage(p int32) int {
	if p == 0 {
		return -1
	}
	return int(p)
}
