package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

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

// heartbeatAs is heartbeat; with takeOver it also removes what presence
// the node id has left from a broker that held it before: one that died
// with it (New, starting), or the twin that claimed it while this one was
// fenced (heartbeat, claiming it back).
func (b *Broker) heartbeatAs(ctx context.Context, takeOver bool) (status int64, err error) {
	ttl := b.cfg.PresenceTTL.Milliseconds()
	start := "0"
	if takeOver {
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
	var back news
	if lost := b.presence.lost.Swap(false); (status != 0 || lost) && !b.up.Load() {
		b.presence.lost.Store(true)
	} else if status != 0 || lost {
		if back, err = b.reregister(ctx); err != nil {
			b.presence.lost.Store(true)
			return status, err
		}
		// After an expiry the cluster was told this node's users left, and
		// after a fence too, with the presence the other broker removed:
		// they are announced back. After Redis lost its data nobody was
		// told anything.
		back.told = status != 2 || b.presence.toldLeft.Load()
		b.presence.toldLeft.Store(false)
	}
	if err := b.repair(ctx); err != nil {
		return status, err
	}
	if removed, _ := res[1].(int64); removed > 0 {
		b.metrics.Reaped.Add(removed)
		b.log.Warn("removed the presence of crashed nodes", "connections", removed, "users_left", (len(res)-3)/2)
	}
	gone := news{told: true}
	gone.conns, _ = res[2].(int64)
	for i := 3; i+1 < len(res); i += 2 {
		user, _ := res[i].(string)
		name, _ := res[i+1].(string)
		gone.users = append(gone.users, hub.PresenceRecord{User: user, Name: name})
	}
	b.tellLobby(ctx, gone, back)
	return status, nil
}

// news are users a heartbeat found gone from the cluster, or back in it,
// with the cluster's connections when it found them.
type news struct {
	users []hub.PresenceRecord // User and Name
	conns int64
	told  bool // the lobby is to be told
}

// tellLobby tells the lobby who left with crashed nodes (or with the
// presence a twin left under this node's id) and who is back with this
// node's presence registered again, each only while the lobby was within
// its presence limit, as the hub tells of its own users. A user in both
// (a connection removed, another registered again, in one heartbeat)
// never left: neither is told. Told one after the other, the lobby would
// be left with the one told last, even when it was "left".
func (b *Broker) tellLobby(ctx context.Context, gone, back news) {
	both := make(map[string]bool)
	if len(gone.users) > 0 && len(back.users) > 0 {
		left := make(map[string]bool, len(gone.users))
		for _, u := range gone.users {
			left[u.User] = true
		}
		for _, u := range back.users {
			if left[u.User] {
				both[u.User] = true
			}
		}
	}
	tell := func(n news, kind hub.Kind, verb string) {
		if !n.told || n.conns > int64(b.cfg.LobbyPresenceLimit) {
			return
		}
		for _, u := range n.users {
			if both[u.User] {
				continue
			}
			b.announce(ctx, &hub.Event{Kind: kind, Time: time.Now().UTC(),
				Message: u.Name + " " + verb + " the chat", UserID: u.User, Sender: u.Name})
		}
	}
	tell(gone, hub.KindUserLeft, "left")
	tell(back, hub.KindUserJoined, "joined")
}

// reregisterBatch is how many connections go in one pipeline when a node
// registers its presence again.
const reregisterBatch = 512

// reregister records again every connection and membership of this node.
// It returns the users whose first connection in the cluster this is again,
// with the cluster's connections after: the caller tells the lobby.
func (b *Broker) reregister(ctx context.Context) (news, error) {
	b.regMu.Lock()
	defer b.regMu.Unlock()
	b.presence.mu.Lock()
	conns := make([]localConn, 0, len(b.presence.conns))
	for _, lc := range b.presence.conns {
		conns = append(conns, localConn{c: lc.c, rooms: slices.Clone(lc.rooms)})
	}
	b.presence.mu.Unlock()
	if len(conns) == 0 {
		return news{}, nil
	}
	// Pipelined, a batch per round trip: a node of 10,000 connections is
	// registered again in milliseconds, not in 10,000 round trips during
	// which every change of presence on the node waits.
	for _, sc := range []*goredis.Script{addConnScript, addMemberScript} {
		if err := sc.Load(ctx, b.rdb).Err(); err != nil {
			return news{}, fmt.Errorf("register again: load script: %w", err)
		}
	}
	var back news // users whose first connection this is again; connections after the last batch
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
			return news{}, fmt.Errorf("register %d connections again: %w", len(part), err)
		}
		for i, cmd := range added {
			res, err := cmd.Int64Slice()
			if err != nil || len(res) != 2 {
				return news{}, fmt.Errorf("register connection %s again: reply %v, %v", part[i].c.ID, res, err)
			}
			if res[0] == 1 {
				back.users = append(back.users, part[i].c)
			}
			back.conns = res[1]
		}
	}
	b.log.Warn("registered this node's presence again", "connections", len(conns))
	return back, nil
}

// announce tells the lobby, cluster-wide, about a change of presence the
// broker itself found.
func (b *Broker) announce(ctx context.Context, ev *hub.Event) {
	if err := b.Publish(ctx, "lobby", ev); err != nil {
		b.log.Warn("announce presence", "kind", ev.Kind.String(), "user", ev.UserID, "err", err)
	}
}
