package redis

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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
	// NodeID names this node in presence. Default: random. No two live
	// brokers of a cluster may have the same: New refuses an id in use
	// (ErrNodeIDTaken), and one whose broker died without closing until
	// PresenceTTL after that broker's last heartbeat.
	NodeID string
	// Heartbeat is how often a node renews its presence and looks for
	// crashed nodes. Default 1s.
	Heartbeat time.Duration
	// PresenceTTL is how long a node's presence outlives its last heartbeat.
	// A crashed node's connections leave presence within PresenceTTL +
	// Heartbeat (of a surviving node). Default 3s; at least 2 × Heartbeat.
	PresenceTTL time.Duration
	// LobbyPresenceLimit bounds the announcements the broker makes itself,
	// of the users of crashed nodes: they are made only while the cluster
	// has at most this many connections, as the hub does with its own
	// (hub.Config.PresenceLimit). Default hub.DefaultPresenceLimit.
	LobbyPresenceLimit int
	// CallTimeout bounds every Redis call made for a session (publish,
	// append, presence, reads): a call Redis has not answered by then fails,
	// Redis is taken for unreachable, and further calls fail at once until
	// a probe every ProbeInterval is answered again. So a hung Redis
	// (SIGSTOP, a full network buffer) costs a session at most this once.
	// Default 500ms: Redis answers in well under a millisecond.
	CallTimeout time.Duration
	// ProbeInterval is how often a node that takes Redis for unreachable
	// PINGs it. Default 100ms.
	ProbeInterval time.Duration
	// SyncTimeout bounds the wait for Redis to confirm a subscription when
	// the caller's ctx has no deadline, and, about, how long a room's live
	// events wait behind missed ones whose read-back fails before those are
	// given up (gaps.go). Default 5s.
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
	if c.LobbyPresenceLimit <= 0 {
		c.LobbyPresenceLimit = hub.DefaultPresenceLimit
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 500 * time.Millisecond
	}
	if c.ProbeInterval <= 0 {
		c.ProbeInterval = 100 * time.Millisecond
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
// options it reads prefix, heartbeat, presence_ttl and call_timeout (Go
// durations), e.g.
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
	}{{"heartbeat", &cfg.Heartbeat}, {"presence_ttl", &cfg.PresenceTTL}, {"call_timeout", &cfg.CallTimeout}} {
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
