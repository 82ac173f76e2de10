package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/tertulia/tertulia/server/hub"
)

// presence is the cluster's presence, the cluster being this node. Every
// change costs the connection's own rooms, never a room's members.
type presence struct {
	pmu   sync.Mutex       // protects the fields below
	conns map[string]*conn // by connection id
	users map[string]user  // by user id
	rooms map[string]*room // rooms with members, by name
}

// conn is a connection and the rooms it is in, so that forgetting it costs
// its own rooms, not every room. A slice, not a map: a connection is in a
// few rooms (at most hub.Config.MaxRooms), and a map per connection would
// cost a few hundred bytes of every idle connection.
type conn struct {
	hub.PresenceRecord
	rooms []string
}

type user struct {
	conns int
	name  string // of the latest connection
}

// room is one room's members: connections, and users with their
// connections in the room.
type room struct {
	conns map[string]struct{}
	users map[string]int
}

func (p *presence) init() {
	p.conns = make(map[string]*conn)
	p.users = make(map[string]user)
	p.rooms = make(map[string]*room)
}

// AddConn implements hub.Presence.
func (p *presence) AddConn(_ context.Context, c hub.PresenceRecord) (bool, int, error) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	if _, ok := p.conns[c.ID]; ok {
		return false, len(p.conns), nil
	}
	p.conns[c.ID] = &conn{PresenceRecord: c}
	u := p.users[c.User]
	u.conns++
	u.name = c.Name
	p.users[c.User] = u
	return u.conns == 1, len(p.conns), nil
}

// RemoveConn implements hub.Presence.
func (p *presence) RemoveConn(_ context.Context, c hub.PresenceRecord) (bool, int, error) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	n := len(p.conns)
	cs, ok := p.conns[c.ID]
	if !ok {
		return false, n, nil
	}
	delete(p.conns, c.ID)
	for _, r := range cs.rooms {
		p.removeMember(r, cs.PresenceRecord)
	}
	u := p.users[cs.User]
	if u.conns--; u.conns > 0 {
		p.users[cs.User] = u
		return false, n, nil
	}
	delete(p.users, cs.User)
	return true, n, nil
}

// AddMember implements hub.Presence.
func (p *presence) AddMember(_ context.Context, name string, c hub.PresenceRecord) (int, error) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	cs, ok := p.conns[c.ID]
	r := p.rooms[name]
	if !ok {
		return r.size(), nil // the connection is gone already
	}
	if r == nil {
		r = &room{conns: make(map[string]struct{}), users: make(map[string]int)}
		p.rooms[name] = r
	}
	if _, in := r.conns[c.ID]; !in {
		r.conns[c.ID] = struct{}{}
		r.users[cs.User]++
		cs.rooms = append(cs.rooms, name)
	}
	return len(r.conns), nil
}

// RemoveMember implements hub.Presence.
func (p *presence) RemoveMember(_ context.Context, name string, c hub.PresenceRecord) (int, error) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	n := p.rooms[name].size()
	if cs, ok := p.conns[c.ID]; ok {
		if i := slices.Index(cs.rooms, name); i >= 0 {
			cs.rooms = slices.Delete(cs.rooms, i, i+1)
		}
		p.removeMember(name, cs.PresenceRecord)
	}
	return n, nil
}

// removeMember takes a connection out of a room's members. The caller holds pmu.
func (p *presence) removeMember(name string, c hub.PresenceRecord) {
	r := p.rooms[name]
	if r == nil {
		return
	}
	if _, in := r.conns[c.ID]; !in {
		return
	}
	delete(r.conns, c.ID)
	if r.users[c.User]--; r.users[c.User] <= 0 {
		delete(r.users, c.User)
	}
	if len(r.conns) == 0 {
		delete(p.rooms, name)
	}
}

func (r *room) size() int {
	if r == nil {
		return 0
	}
	return len(r.conns)
}

// Members implements hub.Presence. It sorts the room's users on every call:
// a page is asked for by a person, not on every join.
func (p *presence) Members(_ context.Context, name, after string, limit int) ([]hub.Member, int, error) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	r := p.rooms[name]
	if r == nil {
		return nil, 0, nil
	}
	ids := make([]string, 0, len(r.users))
	for id := range r.users {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	ids = ids[:min(limit, len(ids))]
	out := make([]hub.Member, len(ids))
	for i, id := range ids {
		out[i] = hub.Member{UserID: id, Name: p.users[id].name, Connections: r.users[id]}
	}
	return out, len(r.users), nil
}

// UserConns implements hub.Presence.
func (p *presence) UserConns(_ context.Context, id string) (int, error) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	return p.users[id].conns, nil
}

// Snapshot implements hub.Presence.
func (p *presence) Snapshot(context.Context) (hub.Snapshot, error) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	s := hub.Snapshot{Connections: len(p.conns), Rooms: make(map[string]int, len(p.rooms))}
	for u := range p.users {
		s.Users = append(s.Users, u)
	}
	slices.Sort(s.Users)
	for name, r := range p.rooms {
		s.Rooms[name] = len(r.conns)
	}
	return s, nil
}
