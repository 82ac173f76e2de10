package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// Bans in Redis, under the prefix P: one string key per ban,
// P:ban:<room>|<user> (room empty for a server ban; a room name never holds
// '|'), holding the ban as JSON and expiring with it (PEXPIREAT), so a ban
// lapses on every node at once with nothing to clean up. The hub sends the
// order that acts on a new ban (disconnect, kick) on the user's topic.

// wireBan is a hub.Ban in Redis.
type wireBan struct {
	User   string `json:"u"`
	Room   string `json:"r,omitempty"`
	Reason string `json:"m,omitempty"`
	Until  int64  `json:"t"` // Unix milliseconds
}

func (b *Broker) banKey(user, room string) string { return b.prefix + "ban:" + room + "|" + user }

// AddBan implements hub.Bans.
func (b *Broker) AddBan(ctx context.Context, ban hub.Ban) error {
	v, err := json.Marshal(wireBan{User: ban.User, Room: ban.Room, Reason: ban.Reason, Until: ban.Until.UnixMilli()})
	if err != nil {
		return fmt.Errorf("encode ban: %w", err)
	}
	key := b.banKey(ban.User, ban.Room)
	err = b.call(ctx, func(ctx context.Context) error {
		_, err := b.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Set(ctx, key, v, 0)
			p.PExpireAt(ctx, key, ban.Until)
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("add ban: %w", err)
	}
	return nil
}

// RemoveBan implements hub.Bans.
func (b *Broker) RemoveBan(ctx context.Context, user, room string) (hub.Ban, bool, error) {
	var v string
	err := b.call(ctx, func(ctx context.Context) (err error) {
		v, err = b.rdb.GetDel(ctx, b.banKey(user, room)).Result()
		return err
	})
	if errors.Is(err, goredis.Nil) {
		return hub.Ban{}, false, nil
	}
	if err != nil {
		return hub.Ban{}, false, fmt.Errorf("remove ban: %w", err)
	}
	return decodeBan(v)
}

// Banned implements hub.Bans: one round trip, the server ban and the room's.
// It is made at every connect and join, so it is bound like the session's
// other calls: while Redis is taken for unreachable it fails at once.
func (b *Broker) Banned(ctx context.Context, user, room string) (hub.Ban, bool, error) {
	keys := []string{b.banKey(user, "")}
	if room != "" {
		keys = append(keys, b.banKey(user, room))
	}
	var vals []any
	err := b.call(ctx, func(ctx context.Context) (err error) {
		vals, err = b.rdb.MGet(ctx, keys...).Result()
		return err
	})
	if err != nil {
		return hub.Ban{}, false, fmt.Errorf("check bans: %w", err)
	}
	for _, v := range vals {
		if s, ok := v.(string); ok {
			return decodeBan(s)
		}
	}
	return hub.Ban{}, false, nil
}

// ListBans implements hub.Bans. It scans the ban keys: an administrator's
// call, rare, and bounded by the bans in force.
func (b *Broker) ListBans(ctx context.Context) ([]hub.Ban, error) {
	var keys []string
	iter := b.rdb.Scan(ctx, 0, globEscape(b.prefix+"ban:")+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("list bans: %w", err)
	}
	out := make([]hub.Ban, 0, len(keys))
	for chunk := range slices.Chunk(keys, 500) {
		vals, err := b.rdb.MGet(ctx, chunk...).Result()
		if err != nil {
			return nil, fmt.Errorf("list bans: %w", err)
		}
		for _, v := range vals {
			s, ok := v.(string) // nil: expired since the scan
			if !ok {
				continue
			}
			if ban, ok, err := decodeBan(s); err == nil && ok {
				out = append(out, ban)
			}
		}
	}
	return out, nil
}

// decodeBan reads a ban; ok is false if it has lapsed (Redis expires keys
// within a millisecond or so of their time).
func decodeBan(v string) (hub.Ban, bool, error) {
	var w wireBan
	if err := json.Unmarshal([]byte(v), &w); err != nil {
		return hub.Ban{}, false, fmt.Errorf("decode ban: %w", err)
	}
	ban := hub.Ban{User: w.User, Room: w.Room, Reason: w.Reason, Until: time.UnixMilli(w.Until).UTC()}
	return ban, ban.Until.After(time.Now()), nil
}

// globEscape escapes the characters SCAN's MATCH gives a meaning to.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
