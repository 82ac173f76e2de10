package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"

	goredis "github.com/redis/go-redis/v9"
)

// A change of presence that fails may still have been made: a call that
// timed out was sent, and a Redis that was only paused runs it when it
// resumes. A session refused meanwhile would then stay in /users for good;
// a connection that ended, or left a room, while Redis was away would too.
// So each such change is written down, and every heartbeat that succeeds
// removes from Redis what this node does not have (what it has, reregister
// puts back). An entry is kept for undoRounds repairs: a resumed Redis runs
// what it was sent at once, before the first repair in practice; the
// second, a heartbeat later, settles what came after it.

// undoKey is a connection (room "") or its membership of room.
type undoKey struct{ conn, room string }

const undoRounds = 2

// mayHaveRun writes down a connection (room "") or membership that a
// change failing with err may have added to Redis, though this node
// refused it.
func (b *Broker) mayHaveRun(err error, conn, room string) {
	if errors.Is(err, errUnreachable) {
		return // never sent
	}
	b.mustRemove(conn, room)
}

// mustRemove writes down a connection (room "") or membership this node
// has ended, but Redis may still hold.
func (b *Broker) mustRemove(conn, room string) {
	b.presence.undoMu.Lock()
	b.presence.undo[undoKey{conn, room}] = undoRounds
	b.presence.undoMu.Unlock()
}

// repair removes from Redis the connections and memberships written down
// that this node does not have. No change of presence runs meanwhile.
func (b *Broker) repair(ctx context.Context) error {
	b.presence.undoMu.Lock()
	keys := make([]undoKey, 0, len(b.presence.undo))
	for k := range b.presence.undo {
		keys = append(keys, k)
	}
	b.presence.undoMu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	b.regMu.Lock()
	defer b.regMu.Unlock()
	for _, sc := range []*goredis.Script{removeConnScript, removeMemberScript} {
		if err := sc.Load(ctx, b.rdb).Err(); err != nil {
			return fmt.Errorf("repair presence: load script: %w", err)
		}
	}
	for start := 0; start < len(keys); start += reregisterBatch {
		part := keys[start:min(start+reregisterBatch, len(keys))]
		_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			b.presence.mu.Lock()
			defer b.presence.mu.Unlock()
			for _, k := range part {
				lc := b.presence.conns[k.conn]
				switch {
				case k.room == "" && lc == nil:
					removeConnScript.EvalSha(ctx, p, nil, b.prefix, k.conn)
				case k.room != "" && lc != nil && !slices.Contains(lc.rooms, k.room):
					removeMemberScript.EvalSha(ctx, p, nil, b.prefix, k.room, k.conn, lc.c.User)
				}
				// Otherwise this node has it, or the connection's own
				// removal takes its rooms with it.
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return fmt.Errorf("repair presence: %w", err)
		}
	}
	b.presence.undoMu.Lock()
	for _, k := range keys {
		if b.presence.undo[k]--; b.presence.undo[k] <= 0 {
			delete(b.presence.undo, k)
		}
	}
	b.presence.undoMu.Unlock()
	return nil
}
