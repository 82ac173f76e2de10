package auth

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// A full cache stays within its bound: it drops the entries that ran out
// when it may sweep, and one entry per new token otherwise.
func TestVerifiedCacheStaysBounded(t *testing.T) {
	v := newVerified()
	now := time.Unix(1_000_000, 0)
	key := func(i int) (k [sha256.Size]byte) {
		binary.BigEndian.PutUint64(k[:], uint64(i))
		return k
	}
	for i := range verifiedEntries {
		until := now.Add(time.Hour)
		if i%2 == 0 {
			until = now.Add(-time.Second) // ran out
		}
		v.put(key(i), hub.Identity{UserID: "u"}, until, now.Add(-time.Hour))
	}
	v.put(key(verifiedEntries), hub.Identity{UserID: "new"}, now.Add(time.Hour), now)
	if n, want := len(v.entries), verifiedEntries/2+1; n != want {
		t.Errorf("after a sweep: %d entries, want %d (those that ran out dropped)", n, want)
	}
	for i := range verifiedEntries {
		v.put(key(verifiedEntries+1+i), hub.Identity{UserID: "more"}, now.Add(time.Hour), now.Add(time.Second))
	}
	if n := len(v.entries); n > verifiedEntries {
		t.Errorf("%d entries, over the bound of %d", n, verifiedEntries)
	}
	if _, ok := v.get(key(2*verifiedEntries), now.Add(time.Second)); !ok {
		t.Error("the newest token is not remembered")
	}
}
