// Package client is a small typed Go client for Tertulia over its gRPC API.
//
//	c, err := client.Dial("localhost:9090", client.WithToken(tok))
//	s, err := c.Connect(ctx)
//	s.Join("general")
//	for ev := range s.Events() { ... }
//
// A Client is safe for concurrent use; so is a Session's sending side.
package client

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// Client is a connection to one Tertulia node.
type Client struct {
	conn  *grpc.ClientConn
	chat  chatv1.ChatServiceClient
	token string
}

// Option configures Dial.
type Option func(*options)

type options struct {
	token   string
	dial    []grpc.DialOption
	backoff Backoff
}

// WithToken authenticates every call with a JWT, those made through Raw
// and Conn included.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithDialOptions adds gRPC dial options (TLS credentials, for example).
// Without any transport credentials the connection is plaintext.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// WithBackoff sets the waits of a Reconnecting session (Reconnect):
// between its attempts to connect, and before it sends again what the
// server refused for now. Other calls ignore it.
func WithBackoff(b Backoff) Option { return func(o *options) { o.backoff = b } }

// Dial returns a client for the node at target ("host:port"). It does not
// wait for the connection: the first call does.
func Dial(target string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dial := append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, tokenInterceptors(o.token)...)
	dial = append(dial, o.dial...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return &Client{conn: conn, chat: chatv1.NewChatServiceClient(conn), token: o.token}, nil
}

// Close closes the connection and every session on it.
func (c *Client) Close() error { return c.conn.Close() }

// Conn returns the underlying gRPC connection, for other services.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Raw returns the generated ChatService client, for what this package does not wrap.
func (c *Client) Raw() chatv1.ChatServiceClient { return c.chat }

func (c *Client) ctx(ctx context.Context) context.Context {
	if c.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// Stats returns the server's connection, user and room counts.
func (c *Client) Stats(ctx context.Context) (*chatv1.GetStatsResponse, error) {
	return c.chat.GetStats(c.ctx(ctx), &chatv1.GetStatsRequest{})
}

// Rooms returns every room with members and its member count.
func (c *Client) Rooms(ctx context.Context) (map[string]int32, error) {
	r, err := c.chat.ListRooms(c.ctx(ctx), &chatv1.ListRoomsRequest{})
	return r.GetRooms(), err
}

// Users returns the ids of the connected users.
func (c *Client) Users(ctx context.Context) ([]string, error) {
	r, err := c.chat.ListUsers(c.ctx(ctx), &chatv1.ListUsersRequest{})
	return r.GetConnectedUsers(), err
}

// Broadcast sends an admin broadcast to everyone, or to room if it is not
// empty, and returns the number of connections it was addressed to. The
// client's token must carry the admin role.
func (c *Client) Broadcast(ctx context.Context, message, room string) (int, error) {
	r, err := c.chat.Broadcast(c.ctx(ctx), &chatv1.BroadcastRequest{Message: message, Room: room})
	return int(r.GetRecipients()), err
}
