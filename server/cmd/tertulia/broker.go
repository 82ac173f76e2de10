package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/metrics"
)

// Connecting to Redis at start is retried: nodes and Redis often start
// together (make run-cluster, a compose file), and Redis may need a moment.
// The waits double from redisFirstWait up to redisMaxWait; after
// redisAttempts the node gives up with the last error (about 16s in all).
const (
	redisAttempts  = 8
	redisFirstWait = 250 * time.Millisecond
	redisMaxWait   = 4 * time.Second
)

// openBroker returns the broker named by --broker and a function that
// closes it. A Redis broker's counters join reg; presenceLimit bounds the
// lobby announcements the Redis broker makes itself.
func openBroker(ctx context.Context, name, redisURL string, presenceLimit int, log *slog.Logger, reg *metrics.Registry) (hub.Broker, func(), error) {
	switch name {
	case "memory":
		return memory.New(), func() {}, nil
	case "redis":
		cfg, err := redis.ParseURL(redisURL)
		if err != nil {
			return nil, nil, fmt.Errorf("--redis-url: %w", err)
		}
		cfg.Logger = log
		cfg.LobbyPresenceLimit = presenceLimit
		// go-redis logs each failed dial on its own; the broker already says
		// when Redis goes and comes back, so those lines go to debug. (The
		// library's logger is process-wide, which main may decide.)
		goredis.SetLogger(redisLog{log})
		b, err := connectRedis(ctx, cfg, log)
		if err != nil {
			return nil, nil, err
		}
		reg.ObserveRedis(b.Metrics())
		return b, func() {
			if err := b.Close(); err != nil {
				log.Warn("close redis broker", "err", err)
			}
		}, nil
	default:
		return nil, nil, fmt.Errorf("unknown --broker %q: want memory or redis", name)
	}
}

// redisLog is go-redis's logger, as debug lines of ours.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "from", "go-redis")
}

// connectRedis tries to join the cluster redisAttempts times, waiting longer
// each time, and logs every failure, telling a node id in use from an
// unreachable Redis.
func connectRedis(ctx context.Context, cfg redis.Config, log *slog.Logger) (*redis.Broker, error) {
	start := time.Now()
	wait := redisFirstWait
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		b, err := redis.New(actx, cfg)
		cancel()
		if err == nil {
			return b, nil
		}
		if attempt == redisAttempts {
			return nil, fmt.Errorf("redis broker: giving up after %d attempts over %v: %w",
				attempt, time.Since(start).Round(100*time.Millisecond), err)
		}
		msg := "redis unreachable; retrying"
		if errors.Is(err, redis.ErrNodeIDTaken) {
			// Not from a random id (the command's): from a NodeID set by
			// hand, held by a live broker or one that died within
			// PresenceTTL.
			msg = "node id in use by another broker; retrying"
		}
		log.Warn(msg, "attempt", attempt, "of", redisAttempts, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("redis broker: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, redisMaxWait)
	}
}
