package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tertulia/tertulia/server/i18n"
)

// Config tunes a Hub. The zero value means the documented defaults.
type Config struct {
	// QueueFrames and QueueBytes bound a session's outbound queue; a session
	// that passes either is disconnected as slow. Defaults: 4096 frames, 4 MiB.
	QueueFrames int
	QueueBytes  int
	// MaxMessageBytes bounds a chat message. Default 4096.
	MaxMessageBytes int
	// MaxRooms bounds the rooms one connection may join. Default 100.
	MaxRooms int
	// Limits bound rates and connection counts (see Limits).
	Limits Limits
	// PresenceLimit is the most members (connections, cluster-wide) the
	// lobby or a room may have for joins and leaves to be announced to the
	// other members (see presence.go), unless the room's namespace has its
	// own (NamespacePolicy.PresenceLimit). Default DefaultPresenceLimit.
	PresenceLimit int
	// Namespaces holds each namespace's policy (access.go). Default: every
	// room public, open to guests, every member publishing.
	Namespaces *Namespaces
	// History bounds the log of the rooms of a namespace (the part of a
	// room name before ':', "" for none), unless Namespaces sets the
	// namespace's own (NamespacePolicy.HistorySize, HistoryTTL). Default:
	// DefaultHistorySize and DefaultHistoryTTL for every namespace; zero
	// fields of its answer mean those too.
	History func(namespace string) LogLimits
	// Inbox bounds each user's private inbox. Zero fields mean the defaults.
	Inbox LogLimits
	// DedupWindow is how long a frame id is remembered, cluster-wide, so
	// that a resend is not delivered twice. Default DefaultDedupWindow.
	DedupWindow time.Duration
	// Logger receives the hub's logs. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// TokenLeeway is how long a session outlives its token's exp (see
	// expiry.go). Default DefaultTokenLeeway; negative means none.
	TokenLeeway time.Duration
	// Tokens verifies the tokens of in-session refreshes. Without it a
	// refresh is refused.
	Tokens TokenVerifier
	// Texts are the server's texts and the default language of sessions.
	// Default: i18n.English().
	Texts *i18n.Catalog
	// ObservePublish, if set, is told how long each Publish to the broker
	// took and how it ended, for metrics. It must be fast and safe for
	// concurrent use.
	ObservePublish func(took time.Duration, err error)
}

func (c Config) withDefaults() Config {
	if c.QueueFrames <= 0 {
		c.QueueFrames = 4096
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 4 << 20
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 4096
	}
	if c.MaxRooms <= 0 {
		c.MaxRooms = 100
	}
	c.Limits = c.Limits.withDefaults()
	if c.PresenceLimit <= 0 {
		c.PresenceLimit = DefaultPresenceLimit
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Texts == nil {
		c.Texts = i18n.English()
	}
	return c.historyDefaults()
}

// Metrics are the hub's counters, safe to read at any time.
type Metrics struct {
	SlowDisconnects atomic.Int64 // sessions closed because their queue overflowed
	Sessions        atomic.Int64 // sessions open on this node now
	Deliveries      atomic.Int64 // frames queued to sessions
	Published       atomic.Int64 // events published by this node

	commands    [cmdKinds]atomic.Int64        // client frames by CommandKind (see CommandsIn)
	disconnects [disconnectKinds]atomic.Int64 // ended sessions by DisconnectCode (see Disconnects)

	// RateLimited counts client frames refused by a rate limit. The code
	// that enforces the limits increments it; /metrics shows it.
	RateLimited atomic.Int64
	// Limits count the breaches of Config.Limits but rate limits (RateLimited).
	Limits LimitMetrics
}

// Hub routes events between the sessions of this node and, through its
// Broker, the other nodes of the cluster.
type Hub struct {
	cfg     Config
	log     *slog.Logger
	broker  Broker
	metrics Metrics

	admission *admission // sessions by user and IP

	seed    maphash.Seed
	shards  [64]groupShard // local subscribers by topic, sharded to keep fan-outs apart
	writers sweeper        // ends the writers that stay idle (see outbox.go)

	closing atomic.Bool
}

// New returns a hub that uses broker to reach the rest of the cluster.
func New(cfg Config, broker Broker) *Hub {
	cfg = cfg.withDefaults()
	h := &Hub{cfg: cfg, log: cfg.Logger, broker: broker, seed: maphash.MakeSeed()}
	h.admission = newAdmission(cfg.Limits, &h.metrics.Limits)
	for i := range h.shards {
		h.shards[i].groups = make(map[string]*group)
	}
	broker.SetHandler(h.deliver)
	return h
}

// Metrics returns the hub's live counters.
func (h *Hub) Metrics() *Metrics { return &h.metrics }

func (h *Hub) now() time.Time { return h.cfg.Now().UTC() }

// ErrShuttingDown is returned by Open once Shutdown has begun.
var ErrShuttingDown = errors.New("server shutting down")

// Open opens a new session speaking for who over t. The session is
// welcomed, and the cluster told if this is the user's first connection
// and the lobby is within its presence limit.
// The caller must call Session.Close when the connection ends.
func (h *Hub) Open(ctx context.Context, who Identity, t Transport) (_ *Session, err error) {
	if h.closing.Load() {
		return nil, ErrShuttingDown
	}
	lim, err := h.admit(ctx, who)
	if err != nil {
		return nil, err
	}
	s := &Session{hub: h, id: newID(), who: who, enc: t.Encoder(), lang: h.language(who), lim: lim}
	s.out = outbox{t: t, maxFrames: h.cfg.QueueFrames, maxBytes: h.cfg.QueueBytes, held: true, sweep: &h.writers}
	inboxTopic := topicUser(who.UserID) // one string, kept by the hold and the group
	// What Open has done so far, undone in reverse if a later step fails.
	var inLobby, holding, inInbox bool
	defer func() {
		if err == nil {
			return
		}
		if holding {
			s.forgetHold(inboxTopic)
		}
		if inInbox {
			h.unsubscribe(ctx, inboxTopic, s)
		}
		if inLobby {
			h.unsubscribe(ctx, topicLobby, s)
		}
		h.unadmit(s)
	}()
	if err := h.subscribe(ctx, topicLobby, s); err != nil {
		return nil, fmt.Errorf("subscribe lobby: %w", err)
	}
	inLobby = true
	s.holdBack(inboxTopic) // until inboxAtConnect
	holding = true
	if err := h.subscribe(ctx, inboxTopic, s); err != nil {
		return nil, fmt.Errorf("subscribe user: %w", err)
	}
	inInbox = true
	// Checked once the user's topic is subscribed: a ban recorded after
	// this check sends its order there (see Ban). Guests, whose ids are
	// new on every connect, are not looked up.
	if !who.Guest {
		if err := h.checkBan(ctx, who.UserID, ""); err != nil {
			return nil, err
		}
	}
	inbox := s.inboxAtConnect(ctx) // ends the hold
	holding = false
	greeting := s.text("Connected to the chat")
	if !who.Guest {
		greeting = s.text("Welcome %s", who.Name)
	}
	// Encoded before the user is counted present: a session that cannot be
	// welcomed is not opened.
	b, err := s.enc.Encode(&Event{Kind: KindSystem, Time: h.now(), Message: greeting, ConnectionID: s.id, UserID: who.UserID,
		Offset: inbox.Offset, Epoch: inbox.Epoch, ExpiresAt: who.Expires})
	if err != nil {
		return nil, fmt.Errorf("encode welcome: %w", err)
	}
	first, conns, err := h.broker.AddConn(ctx, s.presence())
	if err != nil {
		return nil, fmt.Errorf("add presence: %w", err)
	}
	h.metrics.Sessions.Add(1)
	h.log.InfoContext(ctx, "session opened", "conn", s.id, "user", who.UserID, "guest", who.Guest)
	s.out.welcome(b)
	s.expireAt(who.Expires)
	if first && h.announced("", conns) {
		h.publish(ctx, topicLobby, &Event{Kind: KindUserJoined, Time: h.now(), UserID: who.UserID, Sender: who.Name})
	}
	return s, nil
}

// closeSession undoes Open and every join of s, which ended for reason (0:
// the client ended it).
func (h *Hub) closeSession(ctx context.Context, s *Session, rooms []string, reason DisconnectCode) {
	h.metrics.disconnects[min(int(reason), disconnectKinds-1)].Add(1)
	h.log.InfoContext(ctx, "session closed", "conn", s.id, "user", s.who.UserID, "reason", reason.String())
	for _, room := range rooms {
		h.leave(ctx, s, room, "", false)
	}
	h.unsubscribe(ctx, topicUser(s.who.UserID), s)
	h.unsubscribe(ctx, topicLobby, s)
	h.metrics.Sessions.Add(-1)
	h.unadmit(s)
	last, conns, err := h.broker.RemoveConn(ctx, s.presence())
	if err != nil {
		h.log.WarnContext(ctx, "remove presence", "conn", s.id, "err", err)
		return
	}
	// Told even while this node shuts down: other nodes' sessions must hear
	// that its users left.
	if last && h.announced("", conns) {
		h.publish(ctx, topicLobby, &Event{Kind: KindUserLeft, Time: h.now(), UserID: s.who.UserID, Sender: s.who.Name})
	}
}

// publish sends ev to topic through the broker, logging a failure: the
// callers have no one better to tell.
func (h *Hub) publish(ctx context.Context, topic string, ev *Event) error {
	err := h.observed(func() error { return h.broker.Publish(ctx, topic, ev) })
	if err != nil {
		h.log.WarnContext(ctx, "publish", "topic", topic, "kind", ev.Kind.String(), "err", err)
		return err
	}
	return nil
}

// observed runs send, one publish or append to the broker, counted and,
// if Config.ObservePublish is set, timed. Untimed otherwise: time.Now
// twice per message showed in BenchmarkFanout.
func (h *Hub) observed(send func() error) error {
	h.metrics.Published.Add(1)
	observe := h.cfg.ObservePublish
	if observe == nil {
		return send()
	}
	start := time.Now()
	err := send()
	observe(time.Since(start), err)
	return err
}

func (h *Hub) localSessions() []*Session {
	g := h.lookup(topicLobby)
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*Session, 0, len(g.members))
	for s := range g.members {
		out = append(out, s)
	}
	return out
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// GuestIDPrefix starts every anonymous user's id, and no other: a token
// whose sub starts with it is refused, so that no one takes a guest's id
// (and its private messages).
const GuestIDPrefix = "guest-"

// NewGuestID returns a fresh id for an anonymous user.
func NewGuestID() string { return GuestIDPrefix + newID()[:8] }
