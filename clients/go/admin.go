package client

import (
	"context"
	"time"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// The moderation calls of chat.v1.AdminService. The client's token must
// carry the admin role (PermissionDenied otherwise); each acts on every node
// of the cluster.

func (c *Client) admin() chatv1.AdminServiceClient { return chatv1.NewAdminServiceClient(c.conn) }

// DisconnectUser ends every session of user, telling them reason, and
// returns how many connections the user had.
func (c *Client) DisconnectUser(ctx context.Context, user, reason string) (int, error) {
	r, err := c.admin().DisconnectUser(c.ctx(ctx), &chatv1.DisconnectUserRequest{User: user, Reason: reason})
	return int(r.GetConnections()), err
}

// Kick takes user's sessions out of room; they get room_left with kicked set,
// and yours on each session's own copy.
func (c *Client) Kick(ctx context.Context, room, user string) error {
	_, err := c.admin().KickUser(c.ctx(ctx), &chatv1.KickUserRequest{Room: room, User: user})
	return err
}

// Ban bans user from the server (room "") or from room for d, and returns
// the ban as recorded.
func (c *Client) Ban(ctx context.Context, user, room string, d time.Duration, reason string) (*chatv1.Ban, error) {
	r, err := c.admin().BanUser(c.ctx(ctx), &chatv1.BanUserRequest{User: user, Room: room, Duration: d.String(), Reason: reason})
	return r.GetBan(), err
}

// Bans lists the bans in force.
func (c *Client) Bans(ctx context.Context) ([]*chatv1.Ban, error) {
	r, err := c.admin().ListBans(c.ctx(ctx), &chatv1.ListBansRequest{})
	return r.GetBans(), err
}

// LiftBan ends the ban of user from room ("" for the server ban); NotFound
// if there is none.
func (c *Client) LiftBan(ctx context.Context, user, room string) error {
	_, err := c.admin().LiftBan(c.ctx(ctx), &chatv1.LiftBanRequest{User: user, Room: room})
	return err
}
