package hub

import (
	"fmt"
	"path"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// Access to rooms is decided per namespace (DESIGN.md, "Access, sessions,
// moderation"). A room's namespace is the part of its name before the first
// ':' ("team" for "team:eng"); a room without one, and the lobby, are in
// the default namespace, named "". Each namespace has a NamespacePolicy;
// Namespaces holds them all and is the one lookup every part of the hub
// (joins, publishing, history, presence) and every transport (REST reads of
// a room) asks. A refusal has code CodeForbidden (gRPC PermissionDenied,
// REST 403).

// Publish says who may send messages to the rooms of a namespace.
type Publish string

// Who may publish.
const (
	// PublishMembers: every member of the room (the default).
	PublishMembers Publish = "members"
	// PublishAdmins: admins only; others may join and read.
	PublishAdmins Publish = "admins"
)

// NamespacePolicy is what a namespace allows, and how its rooms keep
// history and announce presence.
type NamespacePolicy struct {
	// Private rooms may be joined only by admins and by users whose token's
	// rooms claim lists the room or a pattern matching it (see MatchRoom).
	Private bool
	// Publish says who may send to the rooms. "" means PublishMembers.
	Publish Publish
	// Guests says whether anonymous guests may join the rooms.
	Guests bool
	// HistorySize is how many messages a room keeps: 0 the node's default,
	// negative none.
	HistorySize int
	// HistoryTTL is how long a room keeps a message: 0 the node's default.
	HistoryTTL time.Duration
	// PresenceLimit is the most members a room may have for joins and
	// leaves to be announced: 0 the node's default.
	PresenceLimit int
}

// DefaultNamespacePolicy is the policy of a namespace nobody configured:
// public, every member publishes, guests welcome, the node's history and
// presence settings.
func DefaultNamespacePolicy() NamespacePolicy {
	return NamespacePolicy{Publish: PublishMembers, Guests: true}
}

// DefaultNamespace is the name of the default namespace: rooms without a
// ':' and the lobby. "default" is accepted as its name too.
const DefaultNamespace = ""

// Namespaces maps namespace names onto their policies. A nil *Namespaces
// gives every room DefaultNamespacePolicy. It is immutable once built and
// safe for concurrent use.
type Namespaces struct {
	def    NamespacePolicy
	byName map[string]NamespacePolicy
}

// NewNamespaces returns the policies in byName. The key "" or "default" is
// the default namespace, whose policy is also that of every namespace not
// in byName; without it the default namespace has DefaultNamespacePolicy.
// Names are taken in NFC, as room names are; a name that is no valid start
// of a room name is refused. Policies are taken as they are: filling unset
// fields from the default namespace is the caller's business (see
// server/config).
func NewNamespaces(byName map[string]NamespacePolicy) (*Namespaces, error) {
	ns := &Namespaces{def: DefaultNamespacePolicy(), byName: make(map[string]NamespacePolicy, len(byName))}
	_, hasEmpty := byName[DefaultNamespace]
	_, hasDefault := byName["default"]
	if hasEmpty && hasDefault {
		return nil, fmt.Errorf("namespaces: \"\" and \"default\" both name the default namespace")
	}
	for name, p := range byName {
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("namespace %q: %w", name, err)
		}
		if p.Publish == "" {
			p.Publish = PublishMembers
		}
		if name == DefaultNamespace || name == "default" {
			ns.def = p
			continue
		}
		if strings.Contains(name, ":") {
			return nil, fmt.Errorf("namespace %q: a namespace name has no ':'", name)
		}
		// Room names are NFC (RoomName), so the namespace a room is looked
		// up under is too: a name written decomposed ("cafe" and a
		// combining accent) must still match, or its rooms would silently
		// get the default policy, a private namespace's included.
		canon, bad := RoomName(name)
		if bad != nil {
			return nil, fmt.Errorf("namespace %q: %s", name, bad.Message)
		}
		if _, dup := ns.byName[canon]; dup {
			return nil, fmt.Errorf("namespace %q: another name of the file is the same after NFC normalisation", name)
		}
		ns.byName[canon] = p
	}
	return ns, nil
}

func (p NamespacePolicy) validate() error {
	switch p.Publish {
	case "", PublishMembers, PublishAdmins:
	default:
		return fmt.Errorf("publish %q: want %q or %q", p.Publish, PublishMembers, PublishAdmins)
	}
	if p.HistoryTTL < 0 {
		return fmt.Errorf("history_ttl %v: want a positive duration", p.HistoryTTL)
	}
	if p.PresenceLimit < 0 {
		return fmt.Errorf("presence_limit %d: want a positive number", p.PresenceLimit)
	}
	return nil
}

// Policy returns the policy of room's namespace; room "" is the lobby.
func (n *Namespaces) Policy(room string) NamespacePolicy {
	return n.Namespace(Namespace(room))
}

// Namespace returns the policy of the namespace called name ("" or
// "default" for the default one).
func (n *Namespaces) Namespace(name string) NamespacePolicy {
	if n == nil {
		return DefaultNamespacePolicy()
	}
	if p, ok := n.byName[name]; ok {
		return p
	}
	return n.def
}

// MatchRoom reports whether an entry of a token's rooms claim grants room:
// the entry is the room's name, or a pattern in the syntax of path.Match
// ("team:*" is every room of the namespace team, "*" every room, "room-?"
// one character). A malformed pattern matches nothing.
func MatchRoom(entry, room string) bool {
	if entry == room {
		return true
	}
	ok, err := path.Match(entry, room)
	return err == nil && ok
}

// MayJoin says whether who may join room (and so read it: its history and
// members), or why not, with code forbidden. Admins may join every room.
func (n *Namespaces) MayJoin(who Identity, room string) *Error {
	if who.Admin {
		return nil
	}
	p := n.Policy(room)
	if who.Guest && !p.Guests {
		return errorf(CodeForbidden, "guests may not join room %q: log in first", room)
	}
	if p.Private && !who.grants(room) {
		return errorf(CodeForbidden, "room %q is private: your token does not grant it", room)
	}
	return nil
}

// MayPublish says whether who, a member of room, may send messages to it,
// or why not, with code forbidden.
func (n *Namespaces) MayPublish(who Identity, room string) *Error {
	if who.Admin || n.Policy(room).Publish != PublishAdmins {
		return nil
	}
	return errorf(CodeForbidden, "only admins may send to room %q", room)
}

// grants reports whether who's rooms claim lists room or a pattern matching it.
func (who Identity) grants(room string) bool {
	for _, entry := range who.Rooms {
		// Room names are NFC (RoomName); so must the claim's be, to match.
		if MatchRoom(norm.NFC.String(entry), room) {
			return true
		}
	}
	return false
}

// Namespaces is the hub's access and per-namespace policy (Config.Namespaces).
func (h *Hub) Namespaces() *Namespaces { return h.cfg.Namespaces }
