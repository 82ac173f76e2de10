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
