package hub_test

import (
	"context"
	"testing"

	"github.com/tertulia/tertulia/server/broker/memory"
	"github.com/tertulia/tertulia/server/hub"
)

// limitRecorder is a memory broker that records the limit each Members
// call asks the broker for.
type limitRecorder struct {
	*memory.Broker
	limits []int
}

func (b *limitRecorder) Members(ctx context.Context, room, after string, limit int) ([]hub.Member, int, error) {
	b.limits = append(b.limits, limit)
	return b.Broker.Members(ctx, room, after, limit)
}

// A page of members is never bigger than MaxMembersLimit, whatever the
// client asks for, and is DefaultMembersLimit when it asks for none: the
// broker is asked for one more, to tell whether another page follows.
func TestMembersPageIsCapped(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		asked, want int
	}{
		{0, hub.DefaultMembersLimit + 1},
		{7, 8},
		{hub.MaxMembersLimit, hub.MaxMembersLimit + 1},
		{hub.MaxMembersLimit + 1, hub.MaxMembersLimit + 1},
		{100000, hub.MaxMembersLimit + 1},
	} {
		b := &limitRecorder{Broker: memory.New()}
		h := hub.New(hub.Config{}, b)
		if _, err := h.Members(ctx, "lounge", tc.asked, ""); err != nil {
			t.Fatalf("Members(limit=%d): %v", tc.asked, err)
		}
		if len(b.limits) != 1 || b.limits[0] != tc.want {
			t.Errorf("Members(limit=%d) asked the broker for %v, want [%d]", tc.asked, b.limits, tc.want)
		}
	}
}
