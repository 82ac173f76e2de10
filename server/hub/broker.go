package hub

import "context"

// Topics a node publishes to and subscribes to. A node subscribes to the
// lobby always, to a room's topic while it has members there, and to a user's
// topic while that user has connections on it.
const topicLobby = "lobby"

func topicRoom(room string) string { return "room:" + room }
func topicUser(user string) string { return "user:" + user }

// Broker carries events between the nodes of a cluster and keeps the
// cluster-wide presence. The embedded memory broker is a cluster of one;
// the redis broker joins several nodes. Both pass the conformance suite in
// server/broker/brokertest.
//
// All methods are safe for concurrent use.
type Broker interface {
	// SetHandler sets the function that receives the events of this node's
	// subscriptions. It is called once, before any other method. The
	// handler is called for one topic from one goroutine at a time, in the
	// same order on every node; it must not block.
	SetHandler(h func(topic string, ev *Event))
	// Publish sends ev to every node subscribed to topic, this one included.
	// If this node subscribes to topic, its handler has been given ev when
	// Publish returns (a session that publishes, then leaves, sees its own
	// event). A broker that cannot reach the other nodes still delivers ev
	// to this node's subscribers.
	Publish(ctx context.Context, topic string, ev *Event) error
	// Subscribe starts delivery of topic's events to this node's handler.
	// When it returns without error, events published after it are delivered.
	Subscribe(ctx context.Context, topic string) error
	// Unsubscribe stops delivery of topic's events to this node: once it
	// returns, the handler is given none. Subscriptions are counted: a
	// topic stays subscribed until as many Unsubscribe as Subscribe calls.
	Unsubscribe(ctx context.Context, topic string) error

	Presence
	Log
	Bans
}

// Presence is the cluster-wide record of connections and room membership.
// Every change reports the count it was decided against, read in the same
// atomic step, so that the hub can bound announcements (see PresenceLimit)
// without another round trip.
type Presence interface {
	// AddConn records a connection of a user and reports whether it is that
	// user's first connection in the cluster, and the cluster's connections
	// with this one.
	AddConn(ctx context.Context, c PresenceRecord) (first bool, conns int, err error)
	// RemoveConn forgets a connection and its room memberships, and reports
	// whether it was that user's last connection in the cluster, and the
	// cluster's connections before it went (it included).
	RemoveConn(ctx context.Context, c PresenceRecord) (last bool, conns int, err error)
	// AddMember records a connection's membership of room and reports the
	// room's member connections with it. A connection AddConn did not record
	// joins nothing.
	AddMember(ctx context.Context, room string, c PresenceRecord) (members int, err error)
	// RemoveMember ends a connection's membership of room and reports the
	// room's member connections before it left (it included, if it was in).
	RemoveMember(ctx context.Context, room string, c PresenceRecord) (members int, err error)
	// Members reports at most limit of room's members in the cluster, users
	// whose id sorts after the id after ("" for the first page), in the
	// order of their ids, and how many users the room has.
	Members(ctx context.Context, room, after string, limit int) (members []Member, total int, err error)
	// UserConns counts a user's connections in the cluster.
	UserConns(ctx context.Context, user string) (int, error)
	// Snapshot reports cluster-wide counts.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Member is one user in a room.
type Member struct {
	UserID      string
	Name        string // display name of the user's latest connection
	Connections int    // the user's connections in the room
}

// PresenceRecord is one connection as Presence records it.
type PresenceRecord struct {
	ID   string // unique in the cluster
	User string // user id
	Name string // display name
}

// Snapshot is the cluster-wide state of presence.
type Snapshot struct {
	Connections int
	Users       []string       // sorted user ids
	Rooms       map[string]int // room -> member connections
}
