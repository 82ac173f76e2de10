// Package redis is the hub.Broker that joins several Tertulia nodes through
// one Redis server: events travel by Redis pub/sub, presence lives in Redis
// hashes and sets kept consistent by Lua scripts, and each node heartbeats so
// that a crashed node's connections expire.
//
// Each node holds one pub/sub connection, subscribed to exactly the topics
// its own sessions need, and one goroutine that reads it and calls the hub's
// handler in the order Redis delivers (one order per channel, the same on
// every node). That goroutine never waits for a read of a log: logged
// events the node missed while the connection was away are read back by
// another, and a topic's events that came after them wait behind them, in
// order, for about SyncTimeout, or until more than maxHeld events wait,
// whichever comes first: the gap is then given up (gaps.go). While Redis is unreachable or
// hung a node keeps serving its own sessions: no call waits on Redis
// longer than Config.CallTimeout, what it publishes is delivered to its
// local subscribers only, what must be logged is refused, and when Redis
// returns it resubscribes and registers its presence again.
//
// Files by role: redis.go (the Broker, its start and end), config.go,
// health.go (the bound on every call, and the probe of an unreachable Redis),
// publish.go (Publish and the wait for its own event), subscribe.go,
// receive.go (the pub/sub reader and the handler calls), presence.go,
// heartbeat.go (renewing presence, registering it again, reaping crashed
// nodes), presence_repair.go (undoing changes Redis may have run unseen),
// claim.go (one live broker per node id, and the fence of one whose id
// another claimed), fencewatch.go (telling watchers of a fence), log.go,
// gaps.go (what a node knows of each log, and the events held behind what
// it missed), readback.go (finding what pub/sub missed when the connection
// returns), fill.go (reading it back, outside the topic's lock, and
// retrying), codec.go.
//
// Keys and channels all start with Config.Prefix, so several clusters (or
// tests) can share one Redis. Redis Cluster is not supported: the scripts
// touch keys they compute.
package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// Metrics are a broker's counters, safe to read at any time.
type Metrics struct {
	Published atomic.Int64 // events published through Redis
	Received  atomic.Int64 // events received from Redis, for any topic
	LocalOnly atomic.Int64 // events delivered to this node only, Redis being unreachable
	Reaped    atomic.Int64 // connections of crashed nodes this node removed from presence
	// Reconnects counts the times the pub/sub connection came back after
	// being lost.
	Reconnects atomic.Int64
	GapsFilled atomic.Int64 // logged events missed by pub/sub and read back from their log
	// GapsLost counts the logged events missed by pub/sub that were given
	// up: they could not be read back within about SyncTimeout, or too
	// many events waited behind them, or the log no longer held them
	// (trimmed, or more than maxGapFill back) (gaps.go).
	GapsLost atomic.Int64
	// Fenced counts the times another broker was found holding this
	// broker's node id (claim.go).
	Fenced atomic.Int64
	// Unreachable counts the times Redis did not answer a call within
	// CallTimeout and was taken for unreachable until a probe was answered.
	Unreachable atomic.Int64
	// HistoryAppends counts the events this node added to a log (a room's
	// or an inbox's stream), duplicates not; HistoryAppendErrors the
	// appends to a log that failed. The logs' size is Redis's to tell
	// (XLEN): they are shared by the cluster.
	HistoryAppends      atomic.Int64
	HistoryAppendErrors atomic.Int64
}

// Broker is the Redis hub.Broker of one node. All methods are safe for
// concurrent use. Close releases it.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	rdb     *goredis.Client
	ps      *goredis.PubSub
	prefix  string // cfg.Prefix + ":", before every key and channel
	claim   string // this broker's token in its claim of the node id (claim.go)
	metrics Metrics

	handler atomic.Pointer[func(topic string, ev *hub.Event)]
	// dispatchMu makes handler calls one at a time: the receive loop is one
	// goroutine, but a publish while Redis is away delivers from its caller.
	dispatchMu sync.Mutex

	subMu  sync.Mutex // protects topics
	topics map[string]*topicState

	// gapsDue are the topics with events held behind a gap, to be filled
	// by the read-back goroutine (fill.go).
	gapsMu  sync.Mutex // protects gapsDue
	gapsDue map[string]*topicState

	// pings are the PINGs on the pub/sub connection that confirm a
	// subscription (sync), by token, each waiting for its PONG.
	pingMu  sync.Mutex // protects pings and pingSeq
	pings   map[string]chan struct{}
	pingSeq uint64 // numbers the tokens

	// This node's own events, by the number each carries (echoSeq gives
	// them out): the Publish calls waiting for theirs to come back, and
	// the strays. One lock, as they share the numbers; no path takes it
	// together with pingMu.
	echoMu sync.Mutex // protects echoes, echoSeq and strays
	// echoes are the Publish calls waiting for their event to come back to
	// this node's handler, by the number they gave it.
	echoes  map[uint64]echo
	echoSeq uint64
	// strays are this node's events that Redis did not take in time and
	// that were delivered here instead, by number, with when: a Redis that
	// was only paused publishes them later, and they are not delivered here
	// twice. At most maxStrays; the heartbeat forgets those older than
	// strayTTL (sweepStrays).
	strays map[uint64]time.Time

	up atomic.Bool // the pub/sub connection is live
	// losses counts the times the pub/sub connection was found lost.
	losses atomic.Int64
	// readBackDue: what this node missed while its pub/sub connection was
	// away could not all be read back when it returned (readback.go).
	readBackDue atomic.Bool
	// fenced: another broker holds the node id (claim.go); fenceChange
	// tells its watchers when it changes (FenceChanged).
	fenced      atomic.Bool
	fenceChange changeSignal
	// down: Redis did not answer a call in time and has not answered a
	// probe since (health.go).
	down     atomic.Bool
	probeNow chan struct{} // wakes the prober when down is set
	beatNow  chan struct{} // asks for a heartbeat now: Redis answers again
	recvNow  chan struct{} // cuts the pub/sub reader's backoff: Redis answers again
	// readBackNow asks for what this node missed to be read back
	// (readBacks), if readBackDue.
	readBackNow chan struct{}

	presence // this node's share of presence

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

var _ hub.Broker = (*Broker)(nil)

// New connects to Redis, registers the node's presence and starts its
// pub/sub reader, heartbeat, prober and reader-back of missed events. It fails if Redis cannot be reached now:
// the caller decides whether to retry (the tertulia command does, with
// backoff). It fails with ErrNodeIDTaken, naming the id, if a live broker
// of the cluster has cfg.NodeID. A start that fails otherwise once it may
// have claimed the id (its heartbeat's reply lost, or too late for ctx)
// releases it, as far as Redis answers within CallTimeout: the next try
// is not refused.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:     cfg,
		log:     cfg.Logger.With("broker", "redis", "node", cfg.NodeID),
		rdb:     goredis.NewClient(options(cfg.Options, cfg.CallTimeout)),
		prefix:  cfg.Prefix + ":",
		claim:   newClaimToken(),
		topics:  make(map[string]*topicState),
		gapsDue: make(map[string]*topicState),
		pings:   make(map[string]chan struct{}),
		echoes:  make(map[uint64]echo),
		strays:  make(map[uint64]time.Time),

		probeNow: make(chan struct{}, 1),
		beatNow:  make(chan struct{}, 1),
		recvNow:  make(chan struct{}, 1),

		readBackNow: make(chan struct{}, 1),
	}
	b.presence.init(b)
	b.up.Store(true) // so that the first heartbeat may announce who left with crashed nodes
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		b.rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", cfg.Options.Addr, err)
	}
	if _, err := b.heartbeatAs(ctx, true); err != nil {
		if errors.Is(err, ErrNodeIDTaken) {
			b.rdb.Close()
			return nil, fmt.Errorf("redis broker: %w", err)
		}
		// The heartbeat may have run, its reply lost or too late: the id
		// claimed would refuse the next start for PresenceTTL.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.CallTimeout)
		_ = b.leaveIfClaimed(lctx)
		cancel()
		b.rdb.Close()
		return nil, fmt.Errorf("redis at %s: register node: %w", cfg.Options.Addr, err)
	}
	b.ps = b.rdb.Subscribe(ctx)
	loops, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel = cancel
	b.wg.Add(4)
	go func() { defer b.wg.Done(); b.receive(loops) }()
	go func() { defer b.wg.Done(); b.beat(loops) }()
	go func() { defer b.wg.Done(); b.probe(loops) }()
	go func() { defer b.wg.Done(); b.readBacks(loops) }()
	b.log.Info("joined cluster", "redis", cfg.Options.Addr, "prefix", cfg.Prefix,
		"heartbeat", cfg.Heartbeat, "presence_ttl", cfg.PresenceTTL)
	return b, nil
}

// options are opts with the context deadlines honoured on the socket, which
// go-redis ignores by default: without it no ctx bounds a call to a Redis
// that accepts the bytes and answers nothing. Reads and writes with no ctx
// deadline (the pub/sub connection's handshake, while the pub/sub lock is
// held) are bounded by callTimeout unless opts say otherwise.
func options(opts *goredis.Options, callTimeout time.Duration) *goredis.Options {
	o := *opts
	o.ContextTimeoutEnabled = true
	if o.ReadTimeout == 0 {
		o.ReadTimeout = callTimeout
	}
	return &o
}

// Metrics returns the broker's live counters.
func (b *Broker) Metrics() *Metrics { return &b.metrics }

// NodeID is this node's name in presence.
func (b *Broker) NodeID() string { return b.cfg.NodeID }

// Close stops the broker: it forgets what is left of this node's presence
// (the hub has normally closed every session by then), and closes its Redis
// connections. It is safe to call more than once.
func (b *Broker) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.cancel()
	psErr := b.ps.Close()
	b.wg.Wait()
	b.dropGaps() // no reader hands over, nor gives up, what they hold
	b.releaseEchoes("")
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.SyncTimeout)
	defer cancel()
	if err := b.leave(ctx); err != nil {
		b.log.Warn("leave cluster", "err", err)
	}
	return errors.Join(psErr, b.rdb.Close())
}

// SetHandler implements hub.Broker.
func (b *Broker) SetHandler(h func(topic string, ev *hub.Event)) { b.handler.Store(&h) }

func (b *Broker) channel(topic string) string { return b.prefix + topic }
