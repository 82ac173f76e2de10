package memory

import (
	"context"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// The history's size follows its rings: appends add to it, an eviction by
// size replaces the oldest message's text, and a sweep of logs past their
// TTL takes their messages out.
func TestHistorySizeFollowsTheRings(t *testing.T) {
	b := New()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b.history.now = func() time.Time { return now }
	ctx := context.Background()
	add := func(topic, text string, opt hub.AppendOptions) {
		t.Helper()
		opt.Log = hub.LogLimits{Size: 3}
		if _, err := b.Append(ctx, topic, &hub.Event{Kind: hub.KindMessage, Time: now, Message: text}, opt); err != nil {
			t.Fatal(err)
		}
	}
	want := func(step string, messages, bytes int64) {
		t.Helper()
		if m, n := b.HistorySize(); m != messages || n != bytes {
			t.Errorf("%s: history size %d messages, %d bytes; want %d and %d", step, m, n, messages, bytes)
		}
	}
	add("room:old", "aaaa", hub.AppendOptions{DedupKey: "k0", DedupTTL: time.Minute}) // the first sweep, of nothing
	add("room:old", "bb", hub.AppendOptions{})
	add("user:u", "c", hub.AppendOptions{})
	want("three appends", 3, 7)
	add("room:old", "dd", hub.AppendOptions{})
	add("room:old", "e", hub.AppendOptions{})
	want("room:old full, aaaa evicted", 4, 2+2+1+1)
	_ = b.Publish(ctx, "room:old", &hub.Event{Kind: hub.KindMessage, Message: "not logged"})
	want("a publish", 4, 6)

	now = now.Add(hub.DefaultHistoryTTL + 2*time.Minute)
	add("user:u", "fresh", hub.AppendOptions{DedupKey: "k1", DedupTTL: time.Minute}) // sweeps
	want("after a sweep past the TTL", 1, 5)
}
