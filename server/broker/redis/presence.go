package redis

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// Presence in Redis, under the prefix P:
//
//	P:conns          hash  conn id -> JSON [node, user, name]
//	P:users          hash  user id -> connections in the cluster
//	P:rooms          hash  room -> member connections
//	P:croom:<conn>   set   rooms of one connection
//	P:node:<node>    set   conn ids of one node
//	P:nodes          zset  node -> deadline (ms, Redis clock) of its presence
//	P:reaped:<node>  string, set for an hour when a node's presence expired
//
// Every change is one Lua script, so counts stay consistent and "first" and
// "last" connection of a user are decided once, cluster-wide. The scripts
// read Redis's own clock (TIME), so nodes' clocks do not matter.
const luaRemoveConn = `
local function remove_conn(P, id)
  local v = redis.call('HGET', P .. 'conns', id)
  if not v then return nil end
  local c = cjson.decode(v)
  redis.call('HDEL', P .. 'conns', id)
  redis.call('SREM', P .. 'node:' .. c[1], id)
  local rk = P .. 'croom:' .. id
  for _, room in ipairs(redis.call('SMEMBERS', rk)) do
    if redis.call('HINCRBY', P .. 'rooms', room, -1) <= 0 then redis.call('HDEL', P .. 'rooms', room) end
  end
  redis.call('DEL', rk)
  if redis.call('HINCRBY', P .. 'users', c[2], -1) <= 0 then
    redis.call('HDEL', P .. 'users', c[2])
    return c
  end
  return false
end
`

var (
	// ARGV: P, node, conn id, user, name. Returns 1 for the user's first connection.
	addConnScript = goredis.NewScript(`
local P = ARGV[1]
if redis.call('HSETNX', P .. 'conns', ARGV[3], cjson.encode({ARGV[2], ARGV[4], ARGV[5]})) == 0 then return 0 end
redis.call('SADD', P .. 'node:' .. ARGV[2], ARGV[3])
if redis.call('HINCRBY', P .. 'users', ARGV[4], 1) == 1 then return 1 end
return 0`)

	// ARGV: P, conn id. Returns 1 if it was the user's last connection.
	removeConnScript = goredis.NewScript(luaRemoveConn + `
if remove_conn(ARGV[1], ARGV[2]) then return 1 end
return 0`)

	// ARGV: P, room, conn id. A connection unknown to presence joins nothing.
	addMemberScript = goredis.NewScript(`
local P = ARGV[1]
if redis.call('HEXISTS', P .. 'conns', ARGV[3]) == 0 then return 0 end
if redis.call('SADD', P .. 'croom:' .. ARGV[3], ARGV[2]) == 1 then
  redis.call('HINCRBY', P .. 'rooms', ARGV[2], 1)
end
return 1`)

	// ARGV: P, room, conn id.
	removeMemberScript = goredis.NewScript(`
local P = ARGV[1]
if redis.call('SREM', P .. 'croom:' .. ARGV[3], ARGV[2]) == 1 then
  if redis.call('HINCRBY', P .. 'rooms', ARGV[2], -1) <= 0 then redis.call('HDEL', P .. 'rooms', ARGV[2]) end
end
return 0`)

	// ARGV: P, node, ttl ms. Renews the node's deadline and removes every
	// node whose deadline has passed. Returns {status, removed, left...}:
	// status 0 if the node was known, 1 if its presence had expired (it was
	// reaped), 2 if Redis did not know it (a new node, or a Redis that lost
	// its data); removed counts the connections of reaped nodes; left is
	// user id, name pairs of users whose last connection went with them.
	heartbeatScript = goredis.NewScript(luaRemoveConn + `
local P, node = ARGV[1], ARGV[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {0, 0}
if redis.call('ZADD', P .. 'nodes', now + tonumber(ARGV[3]), node) == 1 then
  out[1] = 2
  if redis.call('DEL', P .. 'reaped:' .. node) == 1 then out[1] = 1 end
end
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '-inf', '(' .. now)) do
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'node:' .. dead)) do
    out[2] = out[2] + 1
    local c = remove_conn(P, id)
    if c then table.insert(out, c[2]); table.insert(out, c[3]) end
  end
  redis.call('DEL', P .. 'node:' .. dead)
  redis.call('ZREM', P .. 'nodes', dead)
  redis.call('SET', P .. 'reaped:' .. dead, 1, 'PX', 3600000)
end
return out`)

	// ARGV: P, node. A node leaving on purpose: its presence goes, no marker.
	leaveScript = goredis.NewScript(luaRemoveConn + `
local P, node = ARGV[1], ARGV[2]
for _, id in ipairs(redis.call('SMEMBERS', P .. 'node:' .. node)) do remove_conn(P, id) end
redis.call('DEL', P .. 'node:' .. node)
redis.call('ZREM', P .. 'nodes', node)
return 0`)
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
}

type localConn struct {
	c     hub.PresenceRecord
	rooms map[string]struct{}
}

func (p *presence) init(b *Broker) {
	p.b = b
	p.conns = make(map[string]*localConn)
}

// AddConn implements hub.Presence. A connection already recorded is not
// counted again.
func (b *Broker) AddConn(ctx context.Context, c hub.PresenceRecord) (bool, error) {
	b.regMu.RLock()
	defer b.regMu.RUnlock()
	first, err := addConnScript.Run(ctx, b.rdb, nil, b.prefix, b.cfg.NodeID, c.ID, c.User, c.Name).Int()
	if err != nil {
		return false, fmt.Errorf("add connection %s: %w", c.ID, err)
	}
	b.presence.mu.Lock()
	if b.presence.conns[c.ID] == nil {
		b.presence.conns[c.ID] = &localConn{c: c, rooms: make(map[string]struct{})}
	}
	b.presence.mu.Unlock()
	return first == 1, nil
}

// RemoveConn implements hub.Presence. It also ends the connection's room
// memberships.
func (b *Broker) RemoveConn(ctx context.Context, c hub.PresenceRecord) (bool, error) {
	b.regMu.RLock()
	defer b.regMu.RUnlock()
	last, err := removeConnScript.Run(ctx, b.rdb, nil, b.prefix, c.ID).Int()
	if err != nil {
		return false, fmt.Errorf("remove connection %s: %w", c.ID, err)
	}
	b.presence.mu.Lock()
	delete(b.presence.conns, c.ID)
	b.presence.mu.Unlock()
	return last == 1, nil
}

// AddMember implements hub.Presence. A connection that AddConn did not
// record joins nothing.
func (b *Broker) AddMember(ctx context.Context, room string, c hub.PresenceRecord) error {
	b.regMu.RLock()
	defer b.regMu.RUnlock()
	if err := addMemberScript.Run(ctx, b.rdb, nil, b.prefix, room, c.ID).Err(); err != nil {
		return fmt.Errorf("add %s to room %q: %w", c.ID, room, err)
	}
	b.presence.mu.Lock()
	if lc := b.presence.conns[c.ID]; lc != nil {
		lc.rooms[room] = struct{}{}
	}
	b.presence.mu.Unlock()
	return nil
}

// RemoveMember implements hub.Presence.
func (b *Broker) RemoveMember(ctx context.Context, room string, c hub.PresenceRecord) error {
	b.regMu.RLock()
	defer b.regMu.RUnlock()
	if err := removeMemberScript.Run(ctx, b.rdb, nil, b.prefix, room, c.ID).Err(); err != nil {
		return fmt.Errorf("remove %s from room %q: %w", c.ID, room, err)
	}
	b.presence.mu.Lock()
	if lc := b.presence.conns[c.ID]; lc != nil {
		delete(lc.rooms, room)
	}
	b.presence.mu.Unlock()
	return nil
}

// UserConns implements hub.Presence.
func (b *Broker) UserConns(ctx context.Context, user string) (int, error) {
	n, err := b.rdb.HGet(ctx, b.prefix+"users", user).Int()
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
	_, err := b.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		conns = p.HLen(ctx, b.prefix+"conns")
		users = p.HKeys(ctx, b.prefix+"users")
		rooms = p.HGetAll(ctx, b.prefix+"rooms")
		return nil
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

// beat renews the node's presence every Heartbeat until ctx ends.
func (b *Broker) beat(ctx context.Context) {
	t := time.NewTicker(b.cfg.Heartbeat)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A beat must not outlast the next one.
		bctx, cancel := context.WithTimeout(ctx, b.cfg.Heartbeat)
		_, err := b.heartbeat(bctx)
		cancel()
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

// heartbeat renews the node's presence, registers it again if Redis lost
// it, and removes crashed nodes' presence, telling the lobby who left.
func (b *Broker) heartbeat(ctx context.Context) (status int64, err error) {
	ttl := b.cfg.PresenceTTL.Milliseconds()
	res, err := heartbeatScript.Run(ctx, b.rdb, nil, b.prefix, b.cfg.NodeID, ttl).Slice()
	if err != nil {
		return 0, fmt.Errorf("heartbeat: %w", err)
	}
	status, _ = res[0].(int64)
	if status != 0 {
		if err := b.reregister(ctx, status == 1); err != nil {
			return status, err
		}
	}
	if removed, _ := res[1].(int64); removed > 0 {
		b.metrics.Reaped.Add(removed)
		b.log.Warn("removed the presence of crashed nodes", "connections", removed, "users_left", (len(res)-2)/2)
	}
	for i := 2; i+1 < len(res); i += 2 {
		user, _ := res[i].(string)
		name, _ := res[i+1].(string)
		b.announce(ctx, &hub.Event{Kind: hub.KindUserLeft, Time: time.Now().UTC(),
			Message: name + " left the chat", UserID: user, Sender: name})
	}
	return status, nil
}

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
		rooms := make(map[string]struct{}, len(lc.rooms))
		for r := range lc.rooms {
			rooms[r] = struct{}{}
		}
		conns = append(conns, localConn{c: lc.c, rooms: rooms})
	}
	b.presence.mu.Unlock()
	if len(conns) == 0 {
		return nil
	}
	for _, lc := range conns {
		c := lc.c
		first, err := addConnScript.Run(ctx, b.rdb, nil, b.prefix, b.cfg.NodeID, c.ID, c.User, c.Name).Int()
		if err != nil {
			return fmt.Errorf("register connection %s again: %w", c.ID, err)
		}
		for room := range lc.rooms {
			if err := addMemberScript.Run(ctx, b.rdb, nil, b.prefix, room, c.ID).Err(); err != nil {
				return fmt.Errorf("register %s in room %q again: %w", c.ID, room, err)
			}
		}
		if first == 1 && announce {
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

// leave forgets this node's presence.
func (b *Broker) leave(ctx context.Context) error {
	return leaveScript.Run(ctx, b.rdb, nil, b.prefix, b.cfg.NodeID).Err()
}
