package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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

// beat renews the node's presence every Heartbeat until ctx ends, and
// asks again for what the node missed to be read back if that could not
// be done when its pub/sub connection returned.
func (b *Broker) beat(ctx context.Context) {
	t := time.NewTicker(b.cfg.Heartbeat)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.beatNow: // Redis answers again: register at once
		}
		b.sweepStrays(time.Now())
		// A beat must not outlast the next one.
		err := errUnreachable // the prober will say when it answers
		if !b.down.Load() {
			bctx, cancel := context.WithTimeout(ctx, b.cfg.Heartbeat)
			_, err = b.heartbeat(bctx)
			cancel()
		}
		if err != nil {
			b.presence.lost.Store(true)
			if errors.Is(err, ErrNodeIDTaken) { // Redis answered
				b.fence()
			} else {
				b.settle(ctx, err)
			}
		}
		if b.readBackDue.Load() {
			kick(b.readBackNow)
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			b.log.Error("presence heartbeat failed: this node's users will expire from the cluster if it goes on", "err", err)
		case err == nil && failing:
			failing = false
			b.log.Warn("presence heartbeat back")
		}
	}
}

// heartbeat renews the node's presence and its claim of the node id,
// registers it again if Redis lost it, and removes crashed nodes' presence,
// telling the lobby who left. It fails with ErrNodeIDTaken, touching
// nothing, if another broker holds the id.
func (b *Broker) heartbeat(ctx context.Context) (status int64, err error) {
	// Claiming the id back, as a start does: what presence it has is a
	// dead broker's (the one that claimed it meanwhile), or gone already.
	return b.heartbeatAs(ctx, b.fenced.Load())
}

// heartbeatAs is heartbeat; starting, by New, it also removes what
// presence the node id has left from a broker that died with it.
func (b *Broker) heartbeatAs(ctx context.Context, starting bool) (status int64, err error) {
	ttl := b.cfg.PresenceTTL.Milliseconds()
	start := "0"
	if starting {
		start = "1"
	}
	res, err := heartbeatScript.Run(ctx, b.rdb, nil, b.prefix, b.cfg.NodeID, ttl, b.claim, start).Slice()
	if err != nil {
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	if len(res) < 2 {
		return 0, fmt.Errorf("heartbeat: unexpected reply %v", res)
	}
	if status, _ = res[0].(int64); status == 3 {
		ms, _ := res[1].(int64)
		return status, b.idTaken(ms)
	}
	b.unfence()
	// Registered again also when presence may have been lost unseen: a
	// heartbeat whose reply was lost may have been the one that told this
	// node it had expired, and the next ones say it is known.
	// And only while this node receives: a user listed in /users must be
	// reachable (a private message to a user not listed is answered "not
	// connected", and kept in the inbox).
	if lost := b.presence.lost.Swap(false); (status != 0 || lost) && !b.up.Load() {
		b.presence.lost.Store(true)
	} else if status != 0 || lost {
		// After a fence the cluster was told this node's users left, with
		// the presence the other broker removed: they are announced back.
		if err := b.reregister(ctx, status != 2 || b.presence.toldLeft.Load()); err != nil {
			b.presence.lost.Store(true)
			return status, err
		}
		b.presence.toldLeft.Store(false)
	}
	if err := b.repair(ctx); err != nil {
		return status, err
	}
	if removed, _ := res[1].(int64); removed > 0 {
		b.metrics.Reaped.Add(removed)
		b.log.Warn("removed the presence of crashed nodes", "connections", removed, "users_left", (len(res)-3)/2)
	}
	// Told only while the lobby was within its presence limit, as the hub
	// tells of its own users.
	if conns, _ := res[2].(int64); conns > int64(b.cfg.LobbyPresenceLimit) {
		return status, nil
	}
	for i := 3; i+1 < len(res); i += 2 {
		user, _ := res[i].(string)
		name, _ := res[i+1].(string)
		b.announce(ctx, &hub.Event{Kind: hub.KindUserLeft, Time: time.Now().UTC(),
			Message: name + " left the chat", UserID: user, Sender: name})
	}
	return status, nil
}

// reregisterBatch is how many connections go in one pipeline when a node
// registers its presence again.
const reregisterBatch = 512

// reregister records again every connection and membership of this node.
// After an expiry (announce set) the cluster was told its users left, so
// those that are back are announced as joined; after Redis lost its data
// nobody was told anything, and nothing is announced.
func (b *Broker) reregister(ctx context.Context, announce bool) error {
	b.regMu.Lock()
	defer b.regMu.Unlock()
	b.presence.mu.Lock()
	conns := make([]localConn, 0, len(b.presence.conns))
	for _, lc := range b.presence.conns {
		conns = append(conns, localConn{c: lc.c, rooms: slices.Clone(lc.rooms)})
	}
	b.presence.mu.Unlock()
	if len(conns) == 0 {
		return nil
	}
	// Pipelined, a batch per round trip: a node of 10,000 connections is
	// registered again in milliseconds, not in 10,000 round trips during
	// which every change of presence on the node waits.
	for _, sc := range []*goredis.Script{addConnScript, addMemberScript} {
		if err := sc.Load(ctx, b.rdb).Err(); err != nil {
			return fmt.Errorf("register again: load script: %w", err)
		}
	}
	var firsts []hub.PresenceRecord // users whose first connection this is again
	var total int64                 // connections in the cluster after the last batch
	for start := 0; start < len(conns); start += reregisterBatch {
		part := conns[start:min(start+reregisterBatch, len(conns))]
		added := make([]*goredis.Cmd, len(part))
		_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, lc := range part {
				c := lc.c
				added[i] = addConnScript.EvalSha(ctx, p, nil, b.prefix, b.cfg.NodeID, c.ID, c.User, c.Name)
				for _, room := range lc.rooms {
					addMemberScript.EvalSha(ctx, p, nil, b.prefix, room, c.ID, c.User)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("register %d connections again: %w", len(part), err)
		}
		for i, cmd := range added {
			res, err := cmd.Int64Slice()
			if err != nil || len(res) != 2 {
				return fmt.Errorf("register connection %s again: reply %v, %v", part[i].c.ID, res, err)
			}
			if res[0] == 1 {
				firsts = append(firsts, part[i].c)
			}
			total = res[1]
		}
	}
	// Announced back as the reaper announced them gone: only while the
	// lobby is within its presence limit.
	if announce && total <= int64(b.cfg.LobbyPresenceLimit) {
		for _, c := range firsts {
			b.announce(ctx, &hub.Event{Kind: hub.KindUserJoined, Time: time.Now().UTC(),
				Message: c.Name + " joined the chat", UserID: c.User, Sender: c.Name})
		}
	}
	b.log.Warn("registered this node's presence again", "connections", len(conns), "after_expiry", announce)
	return nil
}

// announce tells the lobby, cluster-wide, about a change of presence the
// broker itself found.
func (b *Broker) announce(ctx context.Context, ev *hub.Event) {
	if err := b.Publish(ctx, "lobby", ev); err != nil {
		b.log.Warn("announce presence", "kind", ev.Kind.String(), "user", ev.UserID, "err", err)
	}
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
