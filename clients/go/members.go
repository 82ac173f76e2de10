package client

import (
	"context"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// Members returns one page of room's members across the cluster, ordered by
// user id: at most limit (0 for the server's default), after cursor ("" for
// the first page). Pass the response's NextCursor for the next page; it is
// empty on the last one. Rooms above the server's presence limit announce
// no joins or leaves: this is how their members are known.
func (c *Client) Members(ctx context.Context, room string, limit int, cursor string) (*chatv1.ListMembersResponse, error) {
	return c.chat.ListMembers(c.ctx(ctx), &chatv1.ListMembersRequest{Room: room, Limit: int32(limit), Cursor: cursor})
}
