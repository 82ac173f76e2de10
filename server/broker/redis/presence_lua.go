package redis

import goredis "github.com/redis/go-redis/v9"

// Presence in Redis, under the prefix P:
//
//	P:conns            hash  conn id -> JSON [node, user, name]
//	P:users            hash  user id -> connections in the cluster
//	P:names            hash  user id -> display name of the latest connection
//	P:rooms            hash  room -> member connections
//	P:rusers:<room>    hash  user id -> the user's connections in the room
//	P:rorder:<room>    zset  user ids in the room, all scored 0: pages by ZRANGEBYLEX
//	P:croom:<conn>     set   rooms of one connection
//	P:node:<node>      set   conn ids of one node
//	P:nodes            zset  node -> deadline (ms, Redis clock) of its presence
//	P:reaped:<node>    string, set for an hour when a node's presence expired
//	P:claim:<node>     string, the token of the broker holding the node id (claim.go)
//
// Every change is one Lua script, so counts stay consistent and "first" and
// "last" connection of a user are decided once, cluster-wide; each returns
// the count the hub bounds announcements by, read in the same step. No
// script walks a room's members: a join or leave costs O(log members), a
// connection's end its own rooms. The scripts read Redis's own clock
// (TIME), so nodes' clocks do not matter.
const luaRemoveConn = `
local function leave_room(P, room, user)
  if redis.call('HINCRBY', P .. 'rooms', room, -1) <= 0 then redis.call('HDEL', P .. 'rooms', room) end
  local uk = P .. 'rusers:' .. room
  if redis.call('HINCRBY', uk, user, -1) <= 0 then
    redis.call('HDEL', uk, user)
    redis.call('ZREM', P .. 'rorder:' .. room, user)
  end
end
local function remove_conn(P, id)
  local v = redis.call('HGET', P .. 'conns', id)
  if not v then return nil end
  local c = cjson.decode(v)
  redis.call('HDEL', P .. 'conns', id)
  redis.call('SREM', P .. 'node:' .. c[1], id)
  local rk = P .. 'croom:' .. id
  for _, room in ipairs(redis.call('SMEMBERS', rk)) do leave_room(P, room, c[2]) end
  redis.call('DEL', rk)
  if redis.call('HINCRBY', P .. 'users', c[2], -1) <= 0 then
    redis.call('HDEL', P .. 'users', c[2])
    redis.call('HDEL', P .. 'names', c[2])
    return c
  end
  return false
end
`

var (
	// ARGV: P, node, conn id, user, name. Returns {1 if the user's first
	// connection else 0, connections in the cluster}.
	addConnScript = goredis.NewScript(`
local P = ARGV[1]
if redis.call('HSETNX', P .. 'conns', ARGV[3], cjson.encode({ARGV[2], ARGV[4], ARGV[5]})) == 0 then
  return {0, redis.call('HLEN', P .. 'conns')}
end
redis.call('SADD', P .. 'node:' .. ARGV[2], ARGV[3])
redis.call('HSET', P .. 'names', ARGV[4], ARGV[5])
local first = 0
if redis.call('HINCRBY', P .. 'users', ARGV[4], 1) == 1 then first = 1 end
return {first, redis.call('HLEN', P .. 'conns')}`)

	// ARGV: P, conn id. Returns {1 if it was the user's last connection
	// else 0, connections in the cluster before}.
	removeConnScript = goredis.NewScript(luaRemoveConn + `
local n = redis.call('HLEN', ARGV[1] .. 'conns')
if remove_conn(ARGV[1], ARGV[2]) then return {1, n} end
return {0, n}`)

	// ARGV: P, room, conn id, user. A connection unknown to presence joins
	// nothing. Returns the room's member connections after.
	addMemberScript = goredis.NewScript(`
local P, room, id, user = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HEXISTS', P .. 'conns', id) == 1 and redis.call('SADD', P .. 'croom:' .. id, room) == 1 then
  if redis.call('HINCRBY', P .. 'rusers:' .. room, user, 1) == 1 then
    redis.call('ZADD', P .. 'rorder:' .. room, 0, user)
  end
  return redis.call('HINCRBY', P .. 'rooms', room, 1)
end
return tonumber(redis.call('HGET', P .. 'rooms', room) or 0)`)

	// ARGV: P, room, conn id, user. Returns the room's member connections before.
	removeMemberScript = goredis.NewScript(luaRemoveConn + `
local P, room = ARGV[1], ARGV[2]
local n = tonumber(redis.call('HGET', P .. 'rooms', room) or 0)
if redis.call('SREM', P .. 'croom:' .. ARGV[3], room) == 1 then leave_room(P, room, ARGV[4]) end
return n`)

	// ARGV: P, room, after ("" for the start), limit. Returns {users in the
	// room, then user id, name, connections in the room for each of at most
	// limit users after "after"}.
	membersScript = goredis.NewScript(`
local P, room = ARGV[1], ARGV[2]
local zk = P .. 'rorder:' .. room
local min = '-'
if ARGV[3] ~= '' then min = '(' .. ARGV[3] end
local ids = redis.call('ZRANGEBYLEX', zk, min, '+', 'LIMIT', 0, tonumber(ARGV[4]))
local out = {redis.call('ZCARD', zk)}
if #ids == 0 then return out end
local names = redis.call('HMGET', P .. 'names', unpack(ids))
local counts = redis.call('HMGET', P .. 'rusers:' .. room, unpack(ids))
for i, id in ipairs(ids) do
  table.insert(out, id)
  table.insert(out, names[i] or '')
  table.insert(out, tonumber(counts[i]) or 0)
end
return out`)

	// ARGV: P, node, ttl ms, claim token, "1" if the broker is starting.
	// Claims the node id for the broker holding the token (P:claim:<node>,
	// for ttl ms), renews the node's deadline and removes every node whose
	// deadline has passed. A broker starting takes over none of its id's
	// presence: what is left of it is a dead broker's, removed as a crashed
	// node's. Returns {3, ms before the claim expires} if another broker
	// holds the id, touching nothing; otherwise {status, removed, conns,
	// left...}: status 0 if the node was known, 1 if its presence had
	// expired (it was reaped), 2 if Redis did not know it (a new node, or a
	// Redis that lost its data); removed counts the connections of reaped
	// nodes; conns the cluster's connections before; left is user id, name
	// pairs of users whose last connection went with them.
	heartbeatScript = goredis.NewScript(luaRemoveConn + `
local function remove_node(P, dead, out)
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'node:' .. dead)) do
    out[2] = out[2] + 1
    local c = remove_conn(P, id)
    if c then table.insert(out, c[2]); table.insert(out, c[3]) end
  end
  redis.call('DEL', P .. 'node:' .. dead)
  redis.call('ZREM', P .. 'nodes', dead)
end
local P, node, token = ARGV[1], ARGV[2], ARGV[4]
local ck = P .. 'claim:' .. node
local held = redis.call('GET', ck)
if held and held ~= token then return {3, redis.call('PTTL', ck)} end
redis.call('SET', ck, token, 'PX', ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {0, 0, redis.call('HLEN', P .. 'conns')}
if ARGV[5] == '1' then remove_node(P, node, out) end
if redis.call('ZADD', P .. 'nodes', now + tonumber(ARGV[3]), node) == 1 then
  out[1] = 2
  if redis.call('DEL', P .. 'reaped:' .. node) == 1 then out[1] = 1 end
end
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', P .. 'nodes', '-inf', '(' .. now)) do
  remove_node(P, dead, out)
  redis.call('SET', P .. 'reaped:' .. dead, 1, 'PX', 3600000)
end
return out`)

	// ARGV: P, node, claim token, "1" if only while the token holds the
	// id. A node leaving on purpose: its presence goes, no marker, and its
	// claim of the id. Nothing is touched if another broker holds the id,
	// nor if nobody does and ARGV[4] is "1".
	leaveScript = goredis.NewScript(luaRemoveConn + `
local P, node = ARGV[1], ARGV[2]
local ck = P .. 'claim:' .. node
local held = redis.call('GET', ck)
if held ~= ARGV[3] and (held or ARGV[4] == '1') then return 0 end
redis.call('DEL', ck)
for _, id in ipairs(redis.call('SMEMBERS', P .. 'node:' .. node)) do remove_conn(P, id) end
redis.call('DEL', P .. 'node:' .. node)
redis.call('ZREM', P .. 'nodes', node)
return 0`)
)
