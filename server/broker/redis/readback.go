package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tertulia/tertulia/server/hub"
)

// readBackBatch is how many topics' positions one pipelined round trip
// reads when the pub/sub connection is back.
const readBackBatch = 512

// maxFillBackoff bounds the time between two tries of a gap whose read
// failed.
const maxFillBackoff = time.Second

// readBacks runs, each time it is asked (readBackNow) until ctx ends,
// readBack while it is due, the pub/sub connection is up and Redis
// answers, then fills the gaps due (fillGaps), trying those that failed
// again after ProbeInterval, doubled on each failure up to maxFillBackoff,
// or sooner, when live events behind one have waited SyncTimeout: the gap
// is then given up on time, even in a room where nothing more comes.
// The pub/sub reader asks when its connection is back, and deliver when
// an event comes after a gap not yet due (not for each event behind one:
// a gap whose read fails is tried again on the backoff); the heartbeat
// while readBack is still due: none of them waits for it. (With thousands
// of rooms behind, reading back takes seconds: the pub/sub reader goes on
// handing over PONGs and live events meanwhile, holding those of a room
// behind its gap, and heartbeats go on.)
func (b *Broker) readBacks(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := b.cfg.ProbeInterval
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.readBackNow:
		case <-retry.C:
		}
		if b.readBackDue.Load() && b.up.Load() && !b.down.Load() {
			b.readBack(ctx)
		}
		if due, giveUp := b.fillGaps(ctx); due {
			wait := backoff
			if !giveUp.IsZero() { // woken to give it up on time, if not filled before
				wait = min(wait, time.Until(giveUp))
			}
			retry.Reset(wait)
			backoff = min(2*backoff, max(maxFillBackoff, b.cfg.ProbeInterval))
		} else {
			backoff = b.cfg.ProbeInterval
		}
	}
}

// readBack marks, for every topic this node subscribes to, the logged
// events appended after the last one it handed over (or its floor) to be
// read back and handed over (fill): those it missed while its pub/sub
// connection was away, which would otherwise wait for the topic's next
// event. readBacks runs it once the connection is back: by then Redis has
// subscribed the connection again to every channel, so what is appended
// after the positions are read comes through pub/sub, and is dropped there
// if it was read back already.
//
// Before it compares, it waits until the pub/sub reader has handed over
// what Redis published on the connection before the positions were read
// (a PING's PONG comes after it): only what did not come that way, which
// will not come, is read back. Events still on their way, read back first,
// would be dropped when they came if they were at or below a fresh
// subscription's floor (lost), and handed over out of order otherwise.
// A topic that noted an event of another log (a new epoch) since its
// position was read is left alone: what is missing before that event is
// read back before it.
//
// It costs one pipelined round trip per readBackBatch topics and one PING
// on the pub/sub connection; then fill reads the log of each topic that
// missed something. What cannot be read (Redis does not answer) is tried
// again on the next heartbeat while the connection is up (readBackDue).
// It must not run in the pub/sub reader, which it waits for.
func (b *Broker) readBack(ctx context.Context) {
	b.readBackDue.Store(false)
	var topics []string
	var states []*topicState
	b.subMu.Lock()
	for topic, st := range b.topics {
		if st.live.Load() {
			topics, states = append(topics, topic), append(states, st)
		}
	}
	b.subMu.Unlock()
	// What each topic knows before its position is read: one that has
	// noted an event since is up to date with a position the read may be
	// older than.
	marks := make([]gapMark, len(states))
	for i, st := range states {
		st.gap.mu.Lock()
		marks[i] = st.gap.mark()
		st.gap.mu.Unlock()
	}
	pos, err := b.logPositions(ctx, topics)
	if err == nil {
		err = b.sync(ctx)
	}
	if err != nil {
		b.readBackDue.Store(true)
		if ctx.Err() == nil {
			b.log.Warn("missed messages not read back yet", "err", err)
		}
		return
	}
	for i, st := range states {
		t := &st.gap
		t.mu.Lock()
		// A topic that noted an event since its mark was read (Append's
		// local path, on another goroutine) is marked all the same if
		// pos is of the same log: a mark at or below what was handed
		// over is dropped (handOver).
		if st.live.Load() && t.known && (t.mark() == marks[i] || pos[i].Epoch == t.last.Epoch) {
			if n := len(t.held); n > 0 && t.held[n-1].ev == nil {
				t.held[n-1].at = pos[i] // one mark is enough: the latest
			} else {
				t.held = append(t.held, heldEvent{at: pos[i]})
			}
			if b.handOver(topics[i], t) {
				b.fillDue(topics[i], st)
			}
		}
		t.mu.Unlock()
	}
}

// logPositions reads where the logs of topics stand, in pipelined batches.
func (b *Broker) logPositions(ctx context.Context, topics []string) ([]hub.Position, error) {
	out := make([]hub.Position, 0, len(topics))
	for start := 0; start < len(topics); start += readBackBatch {
		part := topics[start:min(start+readBackBatch, len(topics))]
		cmds := make([]*goredis.SliceCmd, len(part))
		err := b.call(ctx, func(ctx context.Context) error {
			_, err := b.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
				for i, topic := range part {
					cmds[i] = p.HMGet(ctx, b.logKeys(topic)[0], "o", "e")
				}
				return nil
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("read where the logs stand: %w", err)
		}
		for _, c := range cmds {
			pos, err := parsePosition(c.Val())
			if err != nil {
				return nil, err
			}
			out = append(out, pos)
		}
	}
	return out, nil
}

// parsePosition reads HMGET's reply for a log's offset and epoch; a log
// that does not exist stands at {0, ""}.
func parsePosition(vals []any) (hub.Position, error) {
	if len(vals) != 2 || vals[0] == nil {
		return hub.Position{}, nil
	}
	o, _ := vals[0].(string)
	e, _ := vals[1].(string)
	n, err := strconv.ParseUint(o, 10, 64)
	if err != nil {
		return hub.Position{}, fmt.Errorf("log offset %q: %w", o, err)
	}
	return hub.Position{Offset: n, Epoch: e}, nil
}
