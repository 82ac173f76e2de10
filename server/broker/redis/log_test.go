package redis

import (
	"context"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/broker/redis/redistest"
	"github.com/tertulia/tertulia/server/hub"
)

// A log left without appends for its TTL expires in Redis; the next append
// starts it again at offset 1 in a new epoch, so that no client mistakes the
// new offsets for the old ones.
func TestExpiredLogStartsANewEpoch(t *testing.T) {
	srv := redistest.Start(t)
	b := newCluster(t, srv, 1, steady)[0]
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	opt := hub.AppendOptions{Log: hub.LogLimits{Size: 10, TTL: 50 * time.Millisecond}}
	msg := func() *hub.Event { return &hub.Event{Kind: hub.KindMessage, Time: time.Now(), Message: "m"} }
	var first hub.Receipt
	for range 3 {
		r, err := b.Append(ctx, "room:brief", msg(), opt)
		if err != nil {
			t.Fatal(err)
		}
		first = r
	}
	if first.Offset != 3 {
		t.Fatalf("third append at offset %d, want 3", first.Offset)
	}
	for {
		page, err := b.ReadLog(ctx, "room:brief", hub.LogQuery{Limits: opt.Log})
		if err != nil {
			t.Fatal(err)
		}
		if page.Offset == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("log still at offset %d after its TTL", page.Offset)
		case <-time.After(10 * time.Millisecond):
		}
	}
	r, err := b.Append(ctx, "room:brief", msg(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Offset != 1 || r.Epoch == first.Epoch || r.Epoch == "" {
		t.Errorf("append after expiry: %+v, want offset 1 in a new epoch (was %q)", r, first.Epoch)
	}
}
