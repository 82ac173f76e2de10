// Package redis is the hub.Broker that joins several Tertulia nodes through
// one Redis server: events travel by Redis pub/sub, presence lives in Redis
// hashes and sets kept consistent by Lua scripts, and each node heartbeats so
// that a crashed node's connections expire.
//
// Each node holds one pub/sub connection, subscribed to exactly the topics
// its own sessions need, and one goroutine that reads it and calls the hub's
// handler in the order Redis delivers (one order per channel, the same on
// every node). While Redis is unreachable a node keeps serving its own
// sessions: what it publishes is delivered to its local subscribers only, and
// when Redis returns it resubscribes and registers its presence again.
//
// Keys and channels all start with Config.Prefix, so several clusters (or
// tests) can share one Redis. Redis Cluster is not supported: the scripts
// touch keys they compute.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// Config tunes a Broker. The zero value of every field but Options means
// its documented default.
type Config struct {
	// Options say how to reach Redis (see ParseURL). Required.
	Options *goredis.Options
	// Prefix starts every key and channel. Default "tertulia".
	Prefix string
	// NodeID names this node in presence. Default: random.
	NodeID string
	// Heartbeat is how often a node renews its presence and looks for
	// crashed nodes. Default 1s.
	Heartbeat time.Duration
	// PresenceTTL is how long a node's presence outlives its last heartbeat.
	// A crashed node's connections leave presence within PresenceTTL +
	// Heartbeat (of a surviving node). Default 3s; at least 2 × Heartbeat.
	PresenceTTL time.Duration
	// SyncTimeout bounds the wait for Redis to confirm a subscription when
	// the caller's ctx has no deadline. Default 5s.
	SyncTimeout time.Duration
	// Logger receives the broker's logs. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Options == nil {
		return c, errors.New("redis broker: Options are required")
	}
	if c.Prefix == "" {
		c.Prefix = "tertulia"
	}
	if c.NodeID == "" {
		var b [8]byte
		rand.Read(b[:])
		c.NodeID = hex.EncodeToString(b[:])
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.PresenceTTL <= 0 {
		c.PresenceTTL = 3 * c.Heartbeat
	}
	if c.PresenceTTL < 2*c.Heartbeat {
		return c, fmt.Errorf("redis broker: presence TTL %v must be at least twice the heartbeat %v", c.PresenceTTL, c.Heartbeat)
	}
	if c.SyncTimeout <= 0 {
		c.SyncTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// ParseURL turns a redis:// URL into a Config. Besides go-redis's own query
// options it reads prefix, heartbeat and presence_ttl (Go durations), e.g.
// redis://127.0.0.1:6379/0?prefix=chat&heartbeat=500ms&presence_ttl=2s.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("redis url: %w", err)
	}
	q := u.Query()
	var cfg Config
	cfg.Prefix = q.Get("prefix")
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"heartbeat", &cfg.Heartbeat}, {"presence_ttl", &cfg.PresenceTTL}} {
		if v := q.Get(d.name); v != "" {
			if *d.to, err = time.ParseDuration(v); err != nil || *d.to <= 0 {
				return Config{}, fmt.Errorf("redis url: %s=%q: want a positive duration such as 500ms", d.name, v)
			}
		}
		q.Del(d.name)
	}
	q.Del("prefix")
	u.RawQuery = q.Encode()
	if cfg.Options, err = goredis.ParseURL(u.String()); err != nil {
		return Config{}, fmt.Errorf("redis url: %w", err)
	}
	// A node must notice a lost Redis quickly and go on serving its own
	// sessions, rather than wait out go-redis's defaults (5s to dial, 5
	// dials per connection, 3 retries per command: seconds per call). The
	// broker retries on its own terms: the heartbeat, the pub/sub reader.
	if cfg.Options.DialTimeout == 0 {
		cfg.Options.DialTimeout = time.Second
	}
	if cfg.Options.DialerRetries == 0 {
		cfg.Options.DialerRetries = 1
	}
	if cfg.Options.MaxRetries == 0 {
		cfg.Options.MaxRetries = 1
	}
	return cfg, nil
}

// Metrics are a broker's counters, safe to read at any time.
type Metrics struct {
	Published atomic.Int64 // events published through Redis
	Received  atomic.Int64 // events received from Redis, for any topic
	LocalOnly atomic.Int64 // events delivered to this node only, Redis being unreachable
	Reaped    atomic.Int64 // connections of crashed nodes this node removed from presence
	// Reconnects counts the times the pub/sub connection came back after
	// being lost.
	Reconnects atomic.Int64
}

// Broker is the Redis hub.Broker of one node. All methods are safe for
// concurrent use. Close releases it.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	rdb     *goredis.Client
	ps      *goredis.PubSub
	prefix  string // cfg.Prefix + ":", before every key and channel
	metrics Metrics

	handler atomic.Pointer[func(topic string, ev *hub.Event)]
	// dispatchMu makes handler calls one at a time: the receive loop is one
	// goroutine, but a publish while Redis is away delivers from its caller.
	dispatchMu sync.Mutex

	subMu  sync.Mutex // protects topics
	topics map[string]*topicState

	pingMu sync.Mutex // protects pings, pingSeq, echoes and echoSeq
	pings  map[string]chan struct{}
	// pingSeq numbers the PINGs that confirm subscriptions.
	pingSeq uint64
	// echoes are the Publish calls waiting for their event to come back to
	// this node's handler, by the number they gave it.
	echoes  map[uint64]echo
	echoSeq uint64

	up atomic.Bool // the pub/sub connection is live

	presence // this node's share of presence

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
}

// echo is a Publish call waiting for its own event.
type echo struct {
	topic string
	done  chan struct{}
}

// topicState is one topic this node subscribes to, or is (un)subscribing.
type topicState struct {
	mu   sync.Mutex // serialises subscribing and unsubscribing the topic with Redis
	refs int        // guarded by mu
	live atomic.Bool
	// holders counts the callers using this state; guarded by Broker.subMu.
	// The state is dropped when no caller holds it and refs is 0.
	holders int
}

var _ hub.Broker = (*Broker)(nil)

// New connects to Redis, registers the node's presence and starts its
// pub/sub reader and heartbeat. It fails if Redis cannot be reached now:
// the caller decides whether to retry (the tertulia command does, with
// backoff).
func New(ctx context.Context, cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:    cfg,
		log:    cfg.Logger.With("broker", "redis", "node", cfg.NodeID),
		rdb:    goredis.NewClient(cfg.Options),
		prefix: cfg.Prefix + ":",
		topics: make(map[string]*topicState),
		pings:  make(map[string]chan struct{}),
		echoes: make(map[uint64]echo),
	}
	b.presence.init(b)
	b.up.Store(true) // so that the first heartbeat may announce who left with crashed nodes
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		b.rdb.Close()
		return nil, fmt.Errorf("redis at %s: %w", cfg.Options.Addr, err)
	}
	if _, err := b.heartbeat(ctx); err != nil {
		b.rdb.Close()
		return nil, fmt.Errorf("redis at %s: register node: %w", cfg.Options.Addr, err)
	}
	b.ps = b.rdb.Subscribe(ctx)
	loops, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel = cancel
	b.wg.Add(2)
	go func() { defer b.wg.Done(); b.receive(loops) }()
	go func() { defer b.wg.Done(); b.beat(loops) }()
	b.log.Info("joined cluster", "redis", cfg.Options.Addr, "prefix", cfg.Prefix,
		"heartbeat", cfg.Heartbeat, "presence_ttl", cfg.PresenceTTL)
	return b, nil
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

// Publish implements hub.Broker. When this node subscribes to topic, Publish
// returns once its own handler has been given ev, as with the memory broker:
// a session that publishes, then leaves, has seen its own event.
//
// While Redis is unreachable, ev is delivered to this node's own subscribers
// only, and Publish succeeds: the node's sessions go on talking among
// themselves. Metrics.LocalOnly counts these.
func (b *Broker) Publish(ctx context.Context, topic string, ev *hub.Event) error {
	if b.up.Load() {
		seq, done := b.expectEcho(topic)
		payload, err := encodeEvent(ev, b.cfg.NodeID, seq)
		if err == nil {
			err = b.rdb.Publish(ctx, b.channel(topic), payload).Err()
		}
		if err == nil {
			b.metrics.Published.Add(1)
			b.awaitEcho(ctx, seq, done)
			return nil
		}
		b.dropEcho(seq)
		if ctx.Err() != nil {
			return fmt.Errorf("publish to %s: %w", topic, err)
		}
		b.log.Warn("publish failed; delivering on this node only", "topic", topic, "err", err)
	}
	b.metrics.LocalOnly.Add(1)
	if b.live(topic) {
		b.dispatch(topic, ev)
	}
	return nil
}

func (b *Broker) live(topic string) bool {
	b.subMu.Lock()
	st := b.topics[topic]
	b.subMu.Unlock()
	return st != nil && st.live.Load()
}

// expectEcho registers a Publish to topic that will wait for its event to
// come back, if this node subscribes to topic. It returns 0 if not.
func (b *Broker) expectEcho(topic string) (uint64, chan struct{}) {
	if !b.live(topic) {
		return 0, nil
	}
	done := make(chan struct{})
	b.pingMu.Lock()
	b.echoSeq++
	seq := b.echoSeq
	b.echoes[seq] = echo{topic: topic, done: done}
	b.pingMu.Unlock()
	return seq, done
}

// awaitEcho waits for the event numbered seq to have been handled here. It
// gives up, without error, after SyncTimeout or when ctx ends: the event is
// published; only this node's copy is late or, if the pub/sub connection
// broke meanwhile, lost.
func (b *Broker) awaitEcho(ctx context.Context, seq uint64, done chan struct{}) {
	if done == nil {
		return
	}
	defer b.dropEcho(seq)
	t := time.NewTimer(b.cfg.SyncTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-t.C:
		b.log.Warn("own event did not come back from redis in time", "timeout", b.cfg.SyncTimeout)
	}
}

func (b *Broker) dropEcho(seq uint64) {
	if seq == 0 {
		return
	}
	b.pingMu.Lock()
	delete(b.echoes, seq)
	b.pingMu.Unlock()
}

// echoed releases the Publish waiting for event seq of this node, if any.
func (b *Broker) echoed(seq uint64) {
	b.pingMu.Lock()
	if e, ok := b.echoes[seq]; ok {
		close(e.done)
		delete(b.echoes, seq)
	}
	b.pingMu.Unlock()
}

// releaseEchoes releases the Publish calls waiting on topic (all topics if
// topic is empty): their events will not come back.
func (b *Broker) releaseEchoes(topic string) {
	b.pingMu.Lock()
	for seq, e := range b.echoes {
		if topic == "" || e.topic == topic {
			close(e.done)
			delete(b.echoes, seq)
		}
	}
	b.pingMu.Unlock()
}

func (b *Broker) dispatch(topic string, ev *hub.Event) {
	h := b.handler.Load()
	if h == nil {
		return
	}
	b.dispatchMu.Lock()
	defer b.dispatchMu.Unlock()
	(*h)(topic, ev)
}

// dispatchIfLive hands ev to the handler if this node still subscribes to
// topic: an UNSUBSCRIBE takes effect in Redis a little after Unsubscribe
// returns.
func (b *Broker) dispatchIfLive(topic string, ev *hub.Event) {
	b.subMu.Lock()
	st := b.topics[topic]
	b.subMu.Unlock()
	h := b.handler.Load()
	if st == nil || h == nil {
		return
	}
	b.dispatchMu.Lock()
	defer b.dispatchMu.Unlock()
	if st.live.Load() {
		(*h)(topic, ev)
	}
}

// hold returns topic's state, marked as in use by the caller until release.
func (b *Broker) hold(topic string) *topicState {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	st := b.topics[topic]
	if st == nil {
		st = &topicState{}
		b.topics[topic] = st
	}
	st.holders++
	return st
}

func (b *Broker) release(topic string, st *topicState) {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	st.holders--
	if st.holders == 0 && !st.live.Load() && b.topics[topic] == st {
		delete(b.topics, topic)
	}
}

// Subscribe implements hub.Broker. Subscriptions are counted: a topic stays
// subscribed until as many Unsubscribe calls. The first one returns once
// Redis has confirmed the subscription, so that what is published after it
// returns is delivered.
func (b *Broker) Subscribe(ctx context.Context, topic string) error {
	st := b.hold(topic)
	defer b.release(topic, st)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.refs > 0 {
		st.refs++
		return nil
	}
	ch := b.channel(topic)
	err := b.ps.Subscribe(ctx, ch)
	if err == nil {
		err = b.sync(ctx)
	}
	if err != nil {
		// go-redis remembers the channel even when the SUBSCRIBE failed, and
		// would subscribe it again on reconnecting: make it forget.
		_ = b.ps.Unsubscribe(context.WithoutCancel(ctx), ch)
		return fmt.Errorf("subscribe %s: %w", topic, err)
	}
	st.refs = 1
	st.live.Store(true)
	return nil
}

// Unsubscribe implements hub.Broker.
func (b *Broker) Unsubscribe(ctx context.Context, topic string) error {
	st := b.hold(topic)
	defer b.release(topic, st)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.refs == 0 {
		return nil
	}
	if st.refs--; st.refs > 0 {
		return nil
	}
	// Taken so that no event of topic is being handled when Unsubscribe
	// returns; the receive loop drops those still on their way.
	b.dispatchMu.Lock()
	st.live.Store(false)
	b.dispatchMu.Unlock()
	b.releaseEchoes(topic)
	// Even when the UNSUBSCRIBE cannot be sent, go-redis has forgotten the
	// channel and will not subscribe it again on reconnecting.
	if err := b.ps.Unsubscribe(ctx, b.channel(topic)); err != nil {
		return fmt.Errorf("unsubscribe %s: %w", topic, err)
	}
	return nil
}

// sync returns once Redis has answered a PING sent on the pub/sub connection
// after everything sent on it before: Redis answers a connection's commands
// in order, so by then an earlier SUBSCRIBE is in effect. (go-redis
// resubscribes every channel on a new connection before sending anything
// else, so a reconnection in between does not break this.)
func (b *Broker) sync(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.SyncTimeout)
		defer cancel()
	}
	b.pingMu.Lock()
	b.pingSeq++
	token := fmt.Sprintf("sync-%d", b.pingSeq)
	done := make(chan struct{})
	b.pings[token] = done
	b.pingMu.Unlock()
	defer func() {
		b.pingMu.Lock()
		delete(b.pings, token)
		b.pingMu.Unlock()
	}()
	if err := b.ps.Ping(ctx, token); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for redis to confirm: %w", ctx.Err())
	}
}

func (b *Broker) pong(payload string) {
	b.pingMu.Lock()
	if done := b.pings[payload]; done != nil {
		close(done)
		delete(b.pings, payload)
	}
	b.pingMu.Unlock()
}

// receive reads the pub/sub connection until ctx ends, dispatching messages
// in order. go-redis reconnects a broken connection and subscribes it again
// to every channel on the next read; receive retries with backoff meanwhile.
func (b *Broker) receive(ctx context.Context) {
	const minBackoff, maxBackoff = 50 * time.Millisecond, time.Second
	backoff := minBackoff
	var downSince time.Time
	for ctx.Err() == nil {
		msg, err := b.ps.ReceiveTimeout(ctx, b.cfg.Heartbeat)
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			if ctx.Err() != nil || errors.Is(err, goredis.ErrClosed) {
				return
			}
			if b.up.Swap(false) {
				downSince = time.Now()
				b.releaseEchoes("")
				b.log.Error("redis pub/sub connection lost: serving this node's sessions only until it returns", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		if !b.up.Swap(true) {
			b.metrics.Reconnects.Add(1)
			b.log.Warn("redis pub/sub connection back; resubscribed", "topics", b.subscribedCount(),
				"down_for", time.Since(downSince).Round(time.Millisecond))
		}
		switch m := msg.(type) {
		case nil: // read timed out: the connection is idle; make sure it lives
			_ = b.ps.Ping(ctx)
		case *goredis.Message:
			b.received(m)
		case *goredis.Pong:
			b.pong(m.Payload)
		}
	}
}

func (b *Broker) received(m *goredis.Message) {
	b.metrics.Received.Add(1)
	topic, ok := strings.CutPrefix(m.Channel, b.prefix)
	if !ok {
		return
	}
	ev, w, err := decodeEvent(m.Payload)
	if err != nil {
		b.log.Error("dropping event", "topic", topic, "err", err)
		return
	}
	b.dispatchIfLive(topic, ev)
	if w.Seq != 0 && w.Origin == b.cfg.NodeID {
		b.echoed(w.Seq)
	}
}

func (b *Broker) subscribedCount() int {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	n := 0
	for _, st := range b.topics {
		if st.live.Load() {
			n++
		}
	}
	return n
}
