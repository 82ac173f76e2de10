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
	Bans
}

// Presence is the cluster-wide record of connections and room membership.
type Presence interface {
	// AddConn records a connection of a user and reports whether it is that
	// user's first connection in the cluster.
	AddConn(ctx context.Context, c Conn) (first bool, err error)
	// RemoveConn forgets a connection and reports whether it was that user's
	// last connection in the cluster.
	RemoveConn(ctx context.Context, c Conn) (last bool, err error)
	// AddMember and RemoveMember record a connection's room membership.
	AddMember(ctx context.Context, room string, c Conn) error
	RemoveMember(ctx context.Context, room string, c Conn) error
	// UserConns counts a user's connections in the cluster.
	UserConns(ctx context.Context, user string) (int, error)
	// Snapshot reports cluster-wide counts.
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Conn identifies one connection to Presence.
type Conn struct {
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
