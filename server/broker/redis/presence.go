package redis

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// presence is this node's share of the cluster's presence. It keeps a copy of
// its own connections and memberships so that it can register them again
// when Redis has lost them (Redis restarted empty, or the node's presence
// expired while Redis was out of its reach).
type presence struct {
	b *Broker
	// regMu is held for reading by every change of presence, across its
	// round trip to Redis, and for writing while registering everything
	// again, so that a connection removed meanwhile is not brought back.
	regMu sync.RWMutex

	mu    sync.Mutex // protects conns
	conns map[string]*localConn

	// lost is set when presence in Redis may no longer match this node's:
	// a heartbeat failed (its reply, telling that the node had expired,
	// may be what was lost) or Redis stopped answering. The next heartbeat
	// that succeeds registers everything again.
	lost atomic.Bool
	// toldLeft is set when the cluster may have been told this node's
	// users left without its presence expiring: another broker claimed its
	// node id (claim.go). They are announced back when registered again.
	toldLeft atomic.Bool
	// undo holds the changes Redis may have run, or not, without telling:
	// see presence_repair.go.
	undoMu sync.Mutex // protects undo
	undo   map[undoKey]int
}

type localConn struct {
	c     hub.PresenceRecord
	rooms []string // a few: a map per connection would cost more
}

func (p *presence) init(b *Broker) {
	p.b = b
	p.conns = make(map[string]*localConn)
	p.undo = make(map[undoKey]int)
}

// AddConn implements hub.Presence. A connection already recorded is not
// counted again.
func (b *Broker) AddConn(ctx context.Context, c hub.PresenceRecord) (bool, int, error) {
	if b.fenced.Load() {
		return false, 0, fmt.Errorf("add connection %s: %w", c.ID, b.errFenced())
	}
	b.regMu.RLock()
	defer b.regMu.RUnlock()
	var first bool
	var conns int
	err := b.call(ctx, func(ctx context.Context) (err error) {
		first, conns, err = b.addConn(ctx, c)
		return err
	})
	if err != nil {
		b.mayHaveRun(err, c.ID, "") // the session is refused: it must not stay in Redis
		return false, 0, fmt.Errorf("add connection %s: %w", c.ID, err)
	}
	b.presence.mu.Lock()
	if b.presence.conns[c.ID] == nil {
		b.presence.conns[c.ID] = &localConn{c: c}
	}
	b.presence.mu.Unlock()
	return first, conns, nil
}

func (b *Broker) addConn(ctx context.Context, c hub.PresenceRecord) (first bool, conns int, err error) {
	res, err := addConnScript.Run(ctx, b.rdb, nil, b.prefix, b.cfg.NodeID, c.ID, c.User, c.Name).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("unexpected reply %v", res)
	}
	return res[0] == 1, int(res[1]), nil
}

// RemoveConn implements hub.Presence. It also ends the connection's room
// memberships.
func (b *Broker) RemoveConn(ctx context.Context, c hub.PresenceRecord) (bool, int, error) {
	b.regMu.RLock()
	defer b.regMu.RUnlock()
	// Forgotten here first: whatever Redis says, the connection has ended,
	// and must not be registered again.
	b.presence.mu.Lock()
	delete(b.presence.conns, c.ID)
	b.presence.mu.Unlock()
	var res []int64
	err := b.call(ctx, func(ctx context.Context) (err error) {
		res, err = removeConnScript.Run(ctx, b.rdb, nil, b.prefix, c.ID).Int64Slice()
		return err
	})
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		b.mustRemove(c.ID, "")
		return false, 0, fmt.Errorf("remove connection %s: %w", c.ID, err)
	}
	return res[0] == 1, int(res[1]), nil
}

// AddMember implements hub.Presence. A connection that AddConn did not
// record joins nothing.
func (b *Broker) AddMember(ctx context.Context, room string, c hub.PresenceRecord) (int, error) {
	if b.fenced.Load() {
		return 0, fmt.Errorf("add %s to room %q: %w", c.ID, room, b.errFenced())
	}
	b.regMu.RLock()
	defer b.regMu.RUnlock()
	var n int
	err := b.call(ctx, func(ctx context.Context) (err error) {
		n, err = addMemberScript.Run(ctx, b.rdb, nil, b.prefix, room, c.ID, c.User).Int()
		return err
	})
	if err != nil {
		b.mayHaveRun(err, c.ID, room) // the join is refused
		return 0, fmt.Errorf("add %s to room %q: %w", c.ID, room, err)
	}
	b.presence.mu.Lock()
	if lc := b.presence.conns[c.ID]; lc != nil {
		if !slices.Contains(lc.rooms, room) {
			lc.rooms = append(lc.rooms, room)
		}
	}
	b.presence.mu.Unlock()
	return n, nil
}

// RemoveMember implements hub.Presence.
func (b *Broker) RemoveMember(ctx context.Context, room string, c hub.PresenceRecord) (int, error) {
	b.regMu.RLock()
	defer b.regMu.RUnlock()
	b.presence.mu.Lock()
	if lc := b.presence.conns[c.ID]; lc != nil {
		if i := slices.Index(lc.rooms, room); i >= 0 {
			lc.rooms = slices.Delete(lc.rooms, i, i+1)
		}
	}
	b.presence.mu.Unlock()
	var n int
	err := b.call(ctx, func(ctx context.Context) (err error) {
		n, err = removeMemberScript.Run(ctx, b.rdb, nil, b.prefix, room, c.ID, c.User).Int()
		return err
	})
	if err != nil {
		b.mustRemove(c.ID, room)
		return 0, fmt.Errorf("remove %s from room %q: %w", c.ID, room, err)
	}
	return n, nil
}

// Members implements hub.Presence: one script, O(log members + limit).
func (b *Broker) Members(ctx context.Context, room, after string, limit int) ([]hub.Member, int, error) {
	var res []any
	err := b.call(ctx, func(ctx context.Context) (err error) {
		res, err = membersScript.Run(ctx, b.rdb, nil, b.prefix, room, after, limit).Slice()
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("members of room %q: %w", room, err)
	}
	total, _ := res[0].(int64)
	out := make([]hub.Member, 0, (len(res)-1)/3)
	for i := 1; i+2 < len(res); i += 3 {
		id, _ := res[i].(string)
		name, _ := res[i+1].(string)
		n, _ := res[i+2].(int64)
		out = append(out, hub.Member{UserID: id, Name: name, Connections: int(n)})
	}
	return out, int(total), nil
}

// UserConns implements hub.Presence.
func (b *Broker) UserConns(ctx context.Context, user string) (int, error) {
	var n int
	err := b.call(ctx, func(ctx context.Context) (err error) {
		n, err = b.rdb.HGet(ctx, b.prefix+"users", user).Int()
		return err
	})
	if err == goredis.Nil {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("count connections of %s: %w", user, err)
	}
	return n, nil
}

// Snapshot implements hub.Presence. The counts are read in one MULTI, so
// they agree with each other.
func (b *Broker) Snapshot(ctx context.Context) (hub.Snapshot, error) {
	var conns *goredis.IntCmd
	var users *goredis.StringSliceCmd
	var rooms *goredis.MapStringStringCmd
	err := b.call(ctx, func(ctx context.Context) error {
		_, err := b.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			conns = p.HLen(ctx, b.prefix+"conns")
			users = p.HKeys(ctx, b.prefix+"users")
			rooms = p.HGetAll(ctx, b.prefix+"rooms")
			return nil
		})
		return err
	})
	if err != nil {
		return hub.Snapshot{}, fmt.Errorf("presence snapshot: %w", err)
	}
	s := hub.Snapshot{Connections: int(conns.Val()), Users: users.Val(), Rooms: make(map[string]int, len(rooms.Val()))}
	sort.Strings(s.Users)
	for r, v := range rooms.Val() {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			s.Rooms[r] = n
		}
	}
	return s, nil
}

// leave forgets this node's presence and releases its node id, unless
// another broker holds the id.
func (b *Broker) leave(ctx context.Context) error {
	return leaveScript.Run(ctx, b.rdb, nil, b.prefix, b.cfg.NodeID, b.claim, "0").Err()
}

// leaveIfClaimed is leave if this broker holds the node id, and nothing
// otherwise: a start that may not have claimed it must not remove what a
// broker that died with the id left (a start removes it telling who left).
func (b *Broker) leaveIfClaimed(ctx context.Context) error {
	return leaveScript.Run(ctx, b.rdb, nil, b.prefix, b.cfg.NodeID, b.claim, "1").Err()
}
