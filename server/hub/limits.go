package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
	"golang.org/x/time/rate"
)

// Off, as the value of a Limits field, turns that limit off. (The zero
// value of a field means its default; flags and the config file say 0 for
// off, and their reader maps 0 to Off.)
const Off = -1

// Limits bound what one client can make a node do (DESIGN.md, "Limits").
// The yaml tags are the names of DESIGN.md, under the config file's limits:.
// The zero value of each field means the documented default; Off (or any
// negative value) turns the limit off.
type Limits struct {
	// MessagesPerSecond and MessagesBurst: the token bucket of one
	// connection's message and private_message frames (and any frame that is
	// not a join or a leave). Defaults 20/s, burst 40.
	MessagesPerSecond float64 `yaml:"messages_per_second"`
	MessagesBurst     int     `yaml:"messages_burst"`
	// UserMessagesPerSecond: the bucket shared by all of one user's
	// connections on this node, with a burst of twice the rate. Default 50/s.
	UserMessagesPerSecond float64 `yaml:"user_messages_per_second"`
	// JoinsPerSecond: one connection's join_room frames, with a burst of
	// twice the rate. Default 10/s.
	JoinsPerSecond float64 `yaml:"joins_per_second"`
	// ConnsPerUser, ConnsPerIP and ConnsPerNode bound the sessions on this
	// node of one user, from one IP address, and in all. Defaults 100,
	// 1,000 and 100,000.
	ConnsPerUser int `yaml:"conns_per_user"`
	ConnsPerIP   int `yaml:"conns_per_ip"`
	ConnsPerNode int `yaml:"conns_per_node"`
	// MaxIDBytes bounds a frame's id. Default 64.
	MaxIDBytes int
	// FloodTimeout: a connection that keeps breaching its rates this long
	// after its first rate_limited answer is closed as a flood. Default 5s.
	FloodTimeout time.Duration
}

// DefaultLimits are the limits of a hub configured with none: DESIGN.md's
// defaults.
func DefaultLimits() Limits { return Limits{}.withDefaults() }

func (l Limits) withDefaults() Limits {
	l.MessagesPerSecond = orDefault(l.MessagesPerSecond, 20)
	l.MessagesBurst = orDefault(l.MessagesBurst, 40)
	l.UserMessagesPerSecond = orDefault(l.UserMessagesPerSecond, 50)
	l.JoinsPerSecond = orDefault(l.JoinsPerSecond, 10)
	l.ConnsPerUser = orDefault(l.ConnsPerUser, 100)
	l.ConnsPerIP = orDefault(l.ConnsPerIP, 1000)
	l.ConnsPerNode = orDefault(l.ConnsPerNode, 100_000)
	l.MaxIDBytes = orDefault(l.MaxIDBytes, 64)
	l.FloodTimeout = orDefault(l.FloodTimeout, 5*time.Second)
	return l
}

func orDefault[T int | float64 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// The error codes of limits, on error frames (and, for the connection
// counts, in the status that refuses a session).
const (
	CodeRateLimited  = chatcodes.CodeRateLimited
	CodeFlood        = chatcodes.CodeFlood
	CodeIDTooLong    = chatcodes.CodeIDTooLong
	CodeTooManyConns = chatcodes.CodeTooManyConns
)

// LimitMetrics count the breaches of Limits, but for rate limits, which
// Metrics.RateLimited counts; safe to read at any time.
type LimitMetrics struct {
	FloodDisconnects atomic.Int64 // connections closed as floods
	IDTooLong        atomic.Int64 // frames refused for their id
	RefusedUser      atomic.Int64 // sessions refused: ConnsPerUser
	RefusedIP        atomic.Int64 // sessions refused: ConnsPerIP
	RefusedNode      atomic.Int64 // sessions refused: ConnsPerNode
}

// DisconnectFlood: the client kept sending over its rate limits. (Its
// value leaves room for the codes of transport.go, under disconnectKinds.)
const DisconnectFlood DisconnectCode = 16

var disconnectFlood = Disconnect{Code: DisconnectFlood, Reason: CodeFlood + ": kept sending over the rate limit after rate_limited"}

type peerIPKey struct{}

// WithPeerIP returns ctx carrying the IP address a connection comes from;
// Connect counts the session against Limits.ConnsPerIP under it. A context
// without one is not counted per IP.
func WithPeerIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, peerIPKey{}, ip)
}

func peerIP(ctx context.Context) string {
	ip, _ := ctx.Value(peerIPKey{}).(string)
	return ip
}

// admission counts the node's sessions by user and IP, and holds the
// per-user rate buckets, which live as long as the user has a session here.
type admission struct {
	lim     Limits
	metrics *LimitMetrics

	mu    sync.Mutex // protects the fields below
	total int
	users map[string]*userEntry
	ips   map[string]int
}

type userEntry struct {
	conns int
	rate  lazyLimiter // made on the user's first message
}

func newAdmission(lim Limits, m *LimitMetrics) *admission {
	return &admission{lim: lim, metrics: m, users: make(map[string]*userEntry), ips: make(map[string]int)}
}

// admit counts a new session of user from ip, or refuses it with an
// *Error of code CodeTooManyConns, counting nothing.
func (a *admission) admit(user, ip string) (*userEntry, *Error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.users[user]
	switch {
	case a.lim.ConnsPerNode > 0 && a.total >= a.lim.ConnsPerNode:
		a.metrics.RefusedNode.Add(1)
		return nil, errorf(CodeTooManyConns, "too many connections: this server holds its limit of %d", a.lim.ConnsPerNode)
	case a.lim.ConnsPerUser > 0 && u != nil && u.conns >= a.lim.ConnsPerUser:
		a.metrics.RefusedUser.Add(1)
		return nil, errorf(CodeTooManyConns, "too many connections: a user may open at most %d", a.lim.ConnsPerUser)
	case a.lim.ConnsPerIP > 0 && ip != "" && a.ips[ip] >= a.lim.ConnsPerIP:
		a.metrics.RefusedIP.Add(1)
		return nil, errorf(CodeTooManyConns, "too many connections: an address may open at most %d", a.lim.ConnsPerIP)
	}
	if u == nil {
		u = &userEntry{}
		a.users[user] = u
	}
	u.conns++
	a.total++
	if ip != "" {
		a.ips[ip]++
	}
	return u, nil
}

// release undoes admit.
func (a *admission) release(user, ip string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total--
	if u := a.users[user]; u != nil {
		if u.conns--; u.conns <= 0 {
			delete(a.users, user)
		}
	}
	if ip != "" {
		if a.ips[ip]--; a.ips[ip] <= 0 {
			delete(a.ips, ip)
		}
	}
}

// sessionLimits are one session's rate buckets and flood state. The
// buckets are made on the session's first frame of their kind: a full
// bucket made then allows what one made at Open would have, and an idle
// session, most of them, holds none.
type sessionLimits struct {
	ip    string
	user  *userEntry
	msgs  lazyLimiter
	joins lazyLimiter

	flooded atomic.Bool // closed as a flood, or about to be
	// msgBreach is when the last message refused for its rate was, in Unix
	// nanoseconds, 0 if none was: read without a lock (breaching).
	msgBreach atomic.Int64

	mu         sync.Mutex // protects the flood state
	floodStart time.Time  // first breach of the current run of breaches
	lastBreach time.Time
}

func newSessionLimits(ip string, u *userEntry) *sessionLimits {
	return &sessionLimits{ip: ip, user: u}
}

// lazyLimiter is a token bucket made on its first use.
type lazyLimiter struct{ p atomic.Pointer[rate.Limiter] }

// allow reports whether one event at now fits a bucket of r per second
// with burst b; r <= 0 means no limit.
func (z *lazyLimiter) allow(now time.Time, r float64, b int) bool {
	if r <= 0 {
		return true
	}
	l := z.p.Load()
	if l == nil {
		z.p.CompareAndSwap(nil, rate.NewLimiter(rate.Limit(r), max(1, b)))
		l = z.p.Load()
	}
	return l.AllowN(now, 1)
}

// breachGap is how long a connection must keep within its rates for a run
// of breaches to end: a client that backs off for it starts afresh.
const breachGap = time.Second

// breaching reports whether a run of message breaches is under way at now.
func (l *sessionLimits) breaching(now time.Time) bool {
	t := l.msgBreach.Load()
	return t != 0 && now.UnixNano()-t <= int64(breachGap)
}

// limit checks cmd against the session's limits before it is carried out.
// It returns the error to answer cmd with, or nil to carry it out; it
// clears an id too long to be echoed. A connection that keeps breaching its
// rates for FloodTimeout is disconnected (after its answer is written).
func (s *Session) limit(cmd *Command) *Error {
	h := s.hub
	lim := &h.cfg.Limits
	if lim.MaxIDBytes > 0 && len(cmd.ID) > lim.MaxIDBytes {
		n := len(cmd.ID)
		cmd.ID = ""
		h.metrics.Limits.IDTooLong.Add(1)
		return errorf(CodeIDTooLong, "id is %d bytes, over the limit of %d", n, lim.MaxIDBytes)
	}
	l := s.lim
	if l == nil || (lim.MessagesPerSecond <= 0 && lim.UserMessagesPerSecond <= 0 && lim.JoinsPerSecond <= 0) {
		return nil // no rate to check (the load tests turn them off): no clock read
	}
	now := h.cfg.Now()
	var err *Error
	switch cmd.Kind {
	case CmdJoinRoom:
		if !l.joins.allow(now, lim.JoinsPerSecond, int(2*lim.JoinsPerSecond)) {
			err = errorf(CodeRateLimited, "too many joins: at most %g per second", lim.JoinsPerSecond)
		}
	case CmdLeaveRoom:
	default:
		switch {
		case l.breaching(now):
			// Within a run of breaches every message is refused, a token
			// that came back meanwhile notwithstanding: the one refused
			// first, sent again once the run is over (breachGap), must not
			// find a later one taken ahead of it.
			err = errorf(CodeRateLimited, "too many messages: at most %g per second; wait %v before sending again", lim.MessagesPerSecond, breachGap)
		case !l.msgs.allow(now, lim.MessagesPerSecond, lim.MessagesBurst):
			err = errorf(CodeRateLimited, "too many messages: at most %g per second", lim.MessagesPerSecond)
		case !l.user.rate.allow(now, lim.UserMessagesPerSecond, int(2*lim.UserMessagesPerSecond)):
			err = errorf(CodeRateLimited, "too many messages from this user: at most %g per second", lim.UserMessagesPerSecond)
		}
	}
	if err == nil {
		return nil
	}
	h.metrics.RateLimited.Add(1)
	l.mu.Lock()
	if now.Sub(l.lastBreach) > breachGap {
		l.floodStart = now
	}
	l.lastBreach = now
	if cmd.Kind != CmdJoinRoom {
		l.msgBreach.Store(now.UnixNano())
	}
	flood := lim.FloodTimeout > 0 && now.Sub(l.floodStart) >= lim.FloodTimeout
	l.mu.Unlock()
	if flood && !l.flooded.Swap(true) {
		h.metrics.Limits.FloodDisconnects.Add(1)
		h.log.Warn("disconnecting flood", "conn", s.id, "user", s.who.UserID)
		s.out.drain(disconnectFlood)
	}
	return err
}

// admit counts a new session for who against the connection limits.
func (h *Hub) admit(ctx context.Context, who Identity) (*sessionLimits, error) {
	ip := peerIP(ctx)
	u, err := h.admission.admit(who.UserID, ip)
	if err != nil {
		return nil, err
	}
	return newSessionLimits(ip, u), nil
}

// unadmit undoes admit once s is detached.
func (h *Hub) unadmit(s *Session) {
	if s.lim != nil {
		h.admission.release(s.who.UserID, s.lim.ip)
	}
}

// MaxFrameBytes bounds one client frame on every transport: a WebSocket
// message (a bigger one closes the connection with 1009), a gRPC message,
// a gRPC-Web WebSocket message, a REST request body. It is the default;
// transports that let it be configured start from it.
const MaxFrameBytes = 64 << 10
