package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// A topic's log is a Redis Stream, PREFIX:log:TOPIC, whose entry ids are the
// offsets (N-0) and whose one field, d, is the event as published, offset and
// epoch included. Beside it the hash PREFIX:logm:TOPIC holds the latest
// offset (o) and the epoch (e). One script numbers, records and publishes an
// event, so offsets have no gaps, and Redis delivers a topic's events in
// offset order. Both keys expire after the log's TTL without an append; the
// next append then draws a new epoch. Dedup keys, PREFIX:dedup:KEY, hold the
// first Append's "offset epoch" for the dedup window.

// appendScript: KEYS meta, stream, dedup; ARGV channel, event JSON without
// its leading '{', epoch if the log has none, size, TTL ms, dedup TTL ms (0:
// no dedup). Returns {duplicate (0 or 1), "offset epoch"}.
var appendScript = goredis.NewScript(`
local dttl = tonumber(ARGV[6])
if dttl > 0 then
  local d = redis.call('GET', KEYS[3])
  if d then return {1, d} end
end
local off, ep, msg = 0, '', '{' .. ARGV[2]
local size = tonumber(ARGV[4])
if size > 0 then
  if redis.call('HSETNX', KEYS[1], 'e', ARGV[3]) == 1 then
    redis.call('DEL', KEYS[2])
  end
  ep = redis.call('HGET', KEYS[1], 'e')
  off = redis.call('HINCRBY', KEYS[1], 'o', 1)
  msg = '{"f":' .. off .. ',"p":"' .. ep .. '",' .. ARGV[2]
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', size, off .. '-0', 'd', msg)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
redis.call('PUBLISH', ARGV[1], msg)
if dttl > 0 then
  redis.call('SET', KEYS[3], off .. ' ' .. ep, 'PX', dttl)
end
return {0, off .. ' ' .. ep}
`)

// readScript: KEYS meta, stream; ARGV size, limit, "tail" or "after", after.
// Returns {latest offset, epoch, entries}.
var readScript = goredis.NewScript(`
local m = redis.call('HMGET', KEYS[1], 'o', 'e')
if not m[1] then return {0, '', {}} end
local latest, limit = tonumber(m[1]), tonumber(ARGV[2])
if limit <= 0 then return {latest, m[2], {}} end
local first = latest - tonumber(ARGV[1]) + 1
if first < 1 then first = 1 end
local entries
if ARGV[3] == 'tail' then
  entries = redis.call('XREVRANGE', KEYS[2], '+', first .. '-0', 'COUNT', limit)
else
  local s = tonumber(ARGV[4]) + 1
  if s < first then s = first end
  entries = redis.call('XRANGE', KEYS[2], s .. '-0', '+', 'COUNT', limit)
end
return {latest, m[2], entries}
`)

func (b *Broker) logKeys(topic string) []string {
	return []string{b.prefix + "logm:" + topic, b.prefix + "log:" + topic}
}

// Append implements hub.Log. It fails while Redis is unreachable, or when
// Redis does not answer within CallTimeout: unlike Publish, it never
// delivers to this node only. (A Redis that was only paused may still run
// an append that failed so, later: a resend with the same dedup key is then
// answered as a duplicate, not delivered twice.) When this node subscribes
// to topic, Append returns once its own handler has been given ev, after
// what this node missed before it, as Publish does. The wait for ev is
// bounded: about SyncTimeout plus a CallTimeout, after the append itself
// (up to a CallTimeout). A session that sends, then leaves, has mostly seen its own message: not
// if it came later than that (an event held behind a second gap, given
// more time when the first is given up, may be handed over after Append
// returned). Appends to a log are counted in Metrics.HistoryAppends and
// HistoryAppendErrors.
func (b *Broker) Append(ctx context.Context, topic string, ev *hub.Event, opt hub.AppendOptions) (hub.Receipt, error) {
	r, err := b.append(ctx, topic, ev, opt)
	if opt.Log.Size > 0 {
		switch {
		case err != nil:
			b.metrics.HistoryAppendErrors.Add(1)
		case !r.Duplicate:
			b.metrics.HistoryAppends.Add(1)
		}
	}
	return r, err
}

// append is Append, uncounted.
func (b *Broker) append(ctx context.Context, topic string, ev *hub.Event, opt hub.AppendOptions) (hub.Receipt, error) {
	if b.fenced.Load() {
		return hub.Receipt{}, fmt.Errorf("append to %s: %w", topic, b.errFenced())
	}
	size, ttl := 0, time.Duration(0)
	if opt.Log.Size > 0 {
		lim := opt.Log.WithDefaults()
		size, ttl = lim.Size, lim.TTL
	}
	dttl := time.Duration(0)
	if opt.DedupKey != "" {
		dttl = max(opt.DedupTTL, time.Millisecond)
	}
	up, live := b.up.Load(), b.live(topic)
	var seq uint64
	var done chan struct{}
	if up {
		seq, done = b.expectEcho(topic, live)
	}
	plain := *ev
	plain.Offset, plain.Epoch = 0, "" // the script puts them first
	payload, err := encodeEvent(&plain, b.claim, seq)
	if err != nil {
		b.dropEcho(seq)
		return hub.Receipt{}, err
	}
	var epoch [8]byte
	rand.Read(epoch[:])
	keys := append(b.logKeys(topic), b.prefix+"dedup:"+opt.DedupKey)
	var res []any
	err = b.call(ctx, func(ctx context.Context) (err error) {
		res, err = appendScript.Run(ctx, b.rdb, keys, b.channel(topic), payload[1:], hex.EncodeToString(epoch[:]),
			size, ttl.Milliseconds(), dttl.Milliseconds()).Slice()
		return err
	})
	if err != nil {
		// Only the reply may have been late: if ev came back, Redis logged
		// and published it, and the sender must hear so, not that it
		// failed (a resend without an id would be a second message).
		if back, pos := b.abandonEcho(seq, false); back {
			b.metrics.Published.Add(1)
			ev.Offset, ev.Epoch = pos.Offset, pos.Epoch
			b.awaitEcho(ctx, seq, done)
			return hub.Receipt{Position: pos}, nil
		}
		return hub.Receipt{}, fmt.Errorf("append to %s: %w", topic, err)
	}
	r, err := parseReceipt(res)
	if err != nil {
		b.dropEcho(seq)
		return hub.Receipt{}, fmt.Errorf("append to %s: %w", topic, err)
	}
	if r.Duplicate {
		b.dropEcho(seq)
		return r, nil
	}
	b.metrics.Published.Add(1)
	ev.Offset, ev.Epoch = r.Offset, r.Epoch
	if up {
		b.awaitEcho(ctx, seq, done)
	} else if live {
		// Redis took it, but this node's pub/sub connection is down: its
		// own sessions would not see it come back, nor those that others
		// appended meanwhile: they are read back first, by the read-back
		// goroutine (deliver asks it at once), and Append returns once
		// ev has been handed over (or once the wait for an echo is over:
		// about SyncTimeout, plus a CallTimeout if ev is held).
		b.deliverOwn(ctx, topic, ev)
	}
	return r, nil
}

func parseReceipt(res []any) (hub.Receipt, error) {
	if len(res) != 2 {
		return hub.Receipt{}, fmt.Errorf("unexpected script reply %v", res)
	}
	dup, _ := res[0].(int64)
	s, _ := res[1].(string)
	off, epoch, _ := strings.Cut(s, " ")
	n, err := strconv.ParseUint(off, 10, 64)
	if err != nil {
		return hub.Receipt{}, fmt.Errorf("unexpected position %q", s)
	}
	return hub.Receipt{Position: hub.Position{Offset: n, Epoch: epoch}, Duplicate: dup == 1}, nil
}

// ReadLog implements hub.Log.
func (b *Broker) ReadLog(ctx context.Context, topic string, q hub.LogQuery) (hub.LogPage, error) {
	lim := q.Limits.WithDefaults()
	mode := "after"
	if q.Tail {
		mode = "tail"
	}
	var res []any
	err := b.call(ctx, func(ctx context.Context) (err error) {
		res, err = readScript.Run(ctx, b.rdb, b.logKeys(topic), lim.Size, q.Limit, mode, q.After).Slice()
		return err
	})
	if err != nil {
		return hub.LogPage{}, fmt.Errorf("read log of %s: %w", topic, err)
	}
	if len(res) != 3 {
		return hub.LogPage{}, fmt.Errorf("read log of %s: unexpected reply %v", topic, res)
	}
	var page hub.LogPage
	latest, _ := res[0].(int64)
	page.Offset = uint64(latest)
	page.Epoch, _ = res[1].(string)
	entries, _ := res[2].([]any)
	now := time.Now()
	for _, e := range entries {
		ev, err := decodeEntry(e)
		if err != nil {
			return hub.LogPage{}, fmt.Errorf("read log of %s: %w", topic, err)
		}
		if lim.Keep(ev.Offset, page.Offset, ev.Time, now) {
			page.Events = append(page.Events, ev)
		}
	}
	if q.Tail { // XREVRANGE gave them newest first
		for i, j := 0, len(page.Events)-1; i < j; i, j = i+1, j-1 {
			page.Events[i], page.Events[j] = page.Events[j], page.Events[i]
		}
	}
	return page, nil
}

// decodeEntry decodes one stream entry: [id, [field, value, ...]].
func decodeEntry(e any) (*hub.Event, error) {
	parts, _ := e.([]any)
	if len(parts) != 2 {
		return nil, errors.New("malformed stream entry")
	}
	fields, _ := parts[1].([]any)
	for i := 0; i+1 < len(fields); i += 2 {
		if name, _ := fields[i].(string); name == "d" {
			payload, _ := fields[i+1].(string)
			ev, _, err := decodeEvent(payload)
			return ev, err
		}
	}
	return nil, fmt.Errorf("stream entry %v has no event", parts[0])
}
