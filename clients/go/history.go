package client

import (
	"context"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// History returns the latest limit messages of room's log (0: the server's
// history size), with the log's epoch and latest offset. It needs the right
// to join the room. A room_joined with recovered false says to call it:
// see Recovery.Reload, which keeps out what was already seen live.
func (c *Client) History(ctx context.Context, room string, limit int) (*chatv1.GetHistoryResponse, error) {
	return c.chat.GetHistory(c.ctx(ctx), &chatv1.GetHistoryRequest{Room: room, Limit: int32(limit)})
}

// HistorySince returns the messages of room's log after offset since, at
// most limit of them (0: the server's history size).
func (c *Client) HistorySince(ctx context.Context, room string, since uint64, limit int) (*chatv1.GetHistoryResponse, error) {
	return c.chat.GetHistory(c.ctx(ctx), &chatv1.GetHistoryRequest{Room: room, Since: &since, Limit: int32(limit)})
}
