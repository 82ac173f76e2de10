package hub

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/tertulia/tertulia/server/i18n"
)

// group is this node's sessions subscribed to one topic.
type group struct {
	// subMu serialises changes of membership that may (un)subscribe the
	// node from the broker, so that a subscribe and an unsubscribe of the
	// same topic never cross. Fan-out does not take it.
	subMu      sync.Mutex
	subscribed bool
	dead       bool // removed from its shard; look it up again

	mu sync.Mutex // protects members and list; held while fanning out, for one order per topic
	// list holds the members for the fan-out, which walks a slice several
	// times faster than a map; members maps each to its index in list, so
	// that a member leaves in constant time.
	list    []*Session
	members map[*Session]int

	// catching counts the members that hold this topic back or drop its
	// messages up to a floor (see catchup.go). While it is 0, as it is but
	// for the moments after joins, the fan-out asks no member: asking each
	// took its catch-up lock and a map lookup by topic per delivery, because
	// a session keeps the floor of its user's topic until a private message
	// above it comes, often never.
	catching atomic.Int32
}

// add makes s a member of topic's group g. The caller holds g.mu. A hold
// on topic made before (see Session.holdBack) is counted in g.catching
// until it ends or s leaves: holds are made before subscribing.
func (g *group) add(topic string, s *Session) {
	if _, ok := g.members[s]; ok {
		return
	}
	g.members[s] = len(g.list)
	g.list = append(g.list, s)
	s.catch.mu.Lock()
	if h := s.catch.find(topic); h != nil && h.counted == nil {
		h.counted = g
		g.catching.Add(1)
	}
	s.catch.mu.Unlock()
}

// remove ends the membership of s in topic's group g, moving the last
// member into its place. The caller holds g.mu.
func (g *group) remove(topic string, s *Session) {
	i, ok := g.members[s]
	if !ok {
		return
	}
	s.catch.mu.Lock()
	if h := s.catch.find(topic); h != nil && h.counted == g {
		h.counted = nil
		g.catching.Add(-1)
	}
	s.catch.mu.Unlock()
	last := len(g.list) - 1
	if i != last {
		g.list[i] = g.list[last]
		g.members[g.list[i]] = i
	}
	g.list[last] = nil
	g.list = g.list[:last]
	delete(g.members, s)
}

type groupShard struct {
	mu     sync.RWMutex // protects groups
	groups map[string]*group
}

func (h *Hub) shard(topic string) *groupShard {
	return &h.shards[maphash.String(h.seed, topic)%uint64(len(h.shards))]
}

func (h *Hub) lookup(topic string) *group {
	sh := h.shard(topic)
	sh.mu.RLock()
	g := sh.groups[topic]
	sh.mu.RUnlock()
	return g
}

func (h *Hub) lookupOrCreate(topic string) *group {
	if g := h.lookup(topic); g != nil {
		return g
	}
	sh := h.shard(topic)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	g := sh.groups[topic]
	if g == nil {
		g = &group{members: make(map[*Session]int)}
		sh.groups[topic] = g
	}
	return g
}

// subscribe adds s to topic's local group, subscribing the node first if s is
// its first local member.
func (h *Hub) subscribe(ctx context.Context, topic string, s *Session) error {
	for {
		g := h.lookupOrCreate(topic)
		g.subMu.Lock()
		if g.dead {
			g.subMu.Unlock()
			continue
		}
		if !g.subscribed {
			if err := h.broker.Subscribe(ctx, topic); err != nil {
				// The group made for s goes with it: a guest's topic is new
				// on every connect, and each attempt while the broker is
				// away would leave one behind.
				h.forgetIfEmpty(topic, g)
				g.subMu.Unlock()
				return err
			}
			g.subscribed = true
		}
		g.mu.Lock()
		g.add(topic, s)
		g.mu.Unlock()
		g.subMu.Unlock()
		return nil
	}
}

// unsubscribe removes s from topic's local group, unsubscribing the node when
// no local member is left.
func (h *Hub) unsubscribe(ctx context.Context, topic string, s *Session) {
	g := h.lookup(topic)
	if g == nil {
		return
	}
	g.subMu.Lock()
	defer g.subMu.Unlock()
	g.mu.Lock()
	g.remove(topic, s)
	empty := len(g.list) == 0
	g.mu.Unlock()
	if !empty || g.dead {
		return
	}
	if g.subscribed {
		if err := h.broker.Unsubscribe(ctx, topic); err != nil {
			h.log.Warn("unsubscribe", "topic", topic, "err", err)
		}
		g.subscribed = false
	}
	h.forgetIfEmpty(topic, g)
}

// forgetIfEmpty takes g, topic's group, out of the hub if no member is
// left in it: a later subscribe makes a new one. The caller holds g.subMu,
// under which members are added.
func (h *Hub) forgetIfEmpty(topic string, g *group) {
	g.mu.Lock()
	empty := len(g.list) == 0
	g.mu.Unlock()
	if !empty {
		return
	}
	sh := h.shard(topic)
	sh.mu.Lock()
	if sh.groups[topic] == g {
		delete(sh.groups, topic)
	}
	sh.mu.Unlock()
	g.dead = true
}

// announce queues b, another member's presence announcement, to go out
// with the next frame that wakes the writer, or within announceDelay (see
// outbox.pushLater). A session's own room_joined and room_left are not
// announcements to it: they answer its frames and go at once.
func (s *Session) announce(b []byte) {
	if !s.out.pushLater(b) {
		s.closeSlow()
	}
}

// encoded caches one event's bytes for one wire format and language during
// a fan-out.
type encoded struct {
	enc  Encoder
	lang i18n.Lang
	b    []byte
}

// deliver is the broker's handler: it queues ev to every local session
// subscribed to topic, encoding it once per wire format (and, for an
// announcement, per language). A client's id goes only to the session that
// sent it: that one copy is encoded on its own, and every other recipient
// shares the bytes of the event without it. So does a kicked room_left's
// Yours: only the session taken out gets the copy with it set, so that a
// user's other sessions can tell it is not about them. Announcements of others'
// presence wake no writer (see Session.announce): they go out with the
// next frame that does, within announceDelay.
func (h *Hub) deliver(topic string, ev *Event) {
	if ev.Kind == KindDisconnect || ev.Kind == KindKick {
		h.moderate(topic, ev)
		return
	}
	g := h.lookup(topic)
	if g == nil {
		return
	}
	own, shared := ev, ev
	if ev.ID != "" {
		c := *ev
		c.ID = ""
		shared = &c
	}
	if ev.Kicked {
		c := *ev
		c.Yours = true
		own = &c
	}
	split := own != ev || shared != ev
	perLang := announced(ev.Kind)
	var cache [4]encoded // a node speaks few formats and languages: no allocation per fan-out
	n := 0
	g.mu.Lock()
	defer g.mu.Unlock()
	catching := g.catching.Load() > 0 // asked once per fan-out, not per member
	for _, s := range g.list {
		if split && s.id == ev.ReplyTo {
			if !catching || !s.heldBack(topic, own, nil) {
				s.send(own)
			}
			continue
		}
		var lang i18n.Lang
		if perLang {
			lang = s.lang
		}
		var b []byte
		for i := 0; i < n; i++ {
			if cache[i].enc == s.enc && cache[i].lang == lang {
				b = cache[i].b
				break
			}
		}
		if b == nil {
			var err error
			b, err = s.enc.Encode(h.localize(shared, lang))
			if err != nil {
				h.log.Error("encode event", "kind", ev.Kind.String(), "err", err)
				continue
			}
			if n < len(cache) {
				cache[n] = encoded{s.enc, lang, b}
				n++
			}
		}
		if catching && s.heldBack(topic, ev, b) {
			continue
		}
		if perLang && s.id != ev.ReplyTo {
			s.announce(b)
		} else {
			s.enqueue(b)
		}
	}
	h.metrics.Deliveries.Add(int64(len(g.list)))
}
