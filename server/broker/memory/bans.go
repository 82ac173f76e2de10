package memory

import (
	"context"
	"sync"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// banKey names one ban: a user's from the server (room "") or from a room.
type banKey struct{ user, room string }

// bans is the broker's record of bans. An expired ban is dropped when it is
// next looked at: nothing runs in the background.
type bans struct {
	mu  sync.Mutex // protects all
	all map[banKey]hub.Ban
	now func() time.Time
}

// lookupLocked returns the ban of k in force, dropping it if it has expired.
func (b *bans) lookupLocked(k banKey) (hub.Ban, bool) {
	ban, ok := b.all[k]
	if ok && !ban.Until.After(b.now()) {
		delete(b.all, k)
		return hub.Ban{}, false
	}
	return ban, ok
}

// AddBan implements hub.Bans.
func (b *Broker) AddBan(_ context.Context, ban hub.Ban) error {
	b.bans.mu.Lock()
	defer b.bans.mu.Unlock()
	b.bans.all[banKey{ban.User, ban.Room}] = ban
	return nil
}

// RemoveBan implements hub.Bans.
func (b *Broker) RemoveBan(_ context.Context, user, room string) (hub.Ban, bool, error) {
	b.bans.mu.Lock()
	defer b.bans.mu.Unlock()
	k := banKey{user, room}
	ban, ok := b.bans.lookupLocked(k)
	delete(b.bans.all, k)
	return ban, ok, nil
}

// Banned implements hub.Bans.
func (b *Broker) Banned(_ context.Context, user, room string) (hub.Ban, bool, error) {
	b.bans.mu.Lock()
	defer b.bans.mu.Unlock()
	if ban, ok := b.bans.lookupLocked(banKey{user, ""}); ok {
		return ban, true, nil
	}
	if room == "" {
		return hub.Ban{}, false, nil
	}
	ban, ok := b.bans.lookupLocked(banKey{user, room})
	return ban, ok, nil
}

// ListBans implements hub.Bans.
func (b *Broker) ListBans(context.Context) ([]hub.Ban, error) {
	b.bans.mu.Lock()
	defer b.bans.mu.Unlock()
	out := make([]hub.Ban, 0, len(b.bans.all))
	for k := range b.bans.all {
		if ban, ok := b.bans.lookupLocked(k); ok {
			out = append(out, ban)
		}
	}
	return out, nil
}
