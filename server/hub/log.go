package hub

import (
	"context"
	"time"
)

// Log is the part of a Broker that keeps history: one log per room topic
// and per user (the private inbox), each message numbered by its offset
// (1, 2, 3, … per topic) within the log's epoch, an opaque string that
// changes whenever the log starts again from offset 1.
//
// All methods are safe for concurrent use.
type Log interface {
	// Append publishes ev to topic as Publish does, but only after the
	// broker holds it, and fails rather than deliver it to this node only.
	//
	// With opt.Log.Size > 0 it first records ev in topic's log, bounded by
	// opt.Log, and sets ev.Offset and ev.Epoch before anyone is given ev:
	// offsets have no gaps, and every node receives topic's events in
	// offset order. With opt.DedupKey set, an Append with the same key
	// within opt.DedupTTL anywhere in the cluster publishes nothing and
	// returns the first one's position with Duplicate set.
	//
	// An error means ev was not taken: nothing was published or recorded.
	Append(ctx context.Context, topic string, ev *Event, opt AppendOptions) (Receipt, error)
	// ReadLog returns topic's latest position and the logged events q asks
	// for, oldest first, each with Offset and Epoch set. Events beyond
	// q.Limits (older than TTL, or more than Size behind the latest) are not
	// returned. A topic never appended to, or whose log expired, has an
	// empty position.
	ReadLog(ctx context.Context, topic string, q LogQuery) (LogPage, error)
}

// LogLimits bound one log. The zero value of a field means its default.
type LogLimits struct {
	// Size is how many of the latest messages are kept. Default 100; a
	// negative Size turns a namespace's room history off (Config.History):
	// its messages get no offset and a join replays nothing.
	Size int
	// TTL is how long a message is kept. Default 24h.
	TTL time.Duration
}

// The defaults of LogLimits and of the dedup window, as DESIGN.md states them.
const (
	DefaultHistorySize = 100
	DefaultHistoryTTL  = 24 * time.Hour
	DefaultDedupWindow = 2 * time.Minute
)

// WithDefaults returns l with its zero fields set to the defaults.
func (l LogLimits) WithDefaults() LogLimits {
	if l.Size <= 0 {
		l.Size = DefaultHistorySize
	}
	if l.TTL <= 0 {
		l.TTL = DefaultHistoryTTL
	}
	return l
}

// AppendOptions say how Append records an event.
type AppendOptions struct {
	// Log bounds topic's log. Size 0 means the event is not logged: it gets
	// no offset (lobby messages).
	Log LogLimits
	// DedupKey, if set, makes the Append happen at most once per key within
	// DedupTTL, cluster-wide.
	DedupKey string
	DedupTTL time.Duration
}

// Position is a place in a log: the offset of its latest message (0 for
// none) in epoch.
type Position struct {
	Offset uint64
	Epoch  string
}

// Receipt is what Append reports: where the event went, and whether it was
// a duplicate that was not published again.
type Receipt struct {
	Position
	Duplicate bool
}

// LogQuery says which events ReadLog returns.
type LogQuery struct {
	// After returns the events with an offset above it; ignored with Tail.
	After uint64
	// Limit bounds how many events are returned; 0 returns none, only the
	// position.
	Limit int
	// Tail returns the latest Limit events instead.
	Tail bool
	// Limits bound the log as Append was told.
	Limits LogLimits
}

// LogPage is what ReadLog returns.
type LogPage struct {
	Position
	Events []*Event
}

// Keep reports whether a logged event at offset, sent at sent, is still in a
// log bounded by l whose latest offset is latest, at now.
func (l LogLimits) Keep(offset, latest uint64, sent, now time.Time) bool {
	l = l.WithDefaults()
	return offset+uint64(l.Size) > latest && now.Sub(sent) < l.TTL
}
