package client

import (
	"context"
	"slices"

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

// Reload is for a room_joined with recovered false: it returns what room's
// history still holds of the messages that join could not replay (the
// latest limit of them; 0: the server's history size), in order. With the
// live messages that followed that room_joined, each is seen once. It
// returns nothing when nothing is missing.
func (r *Recovery) Reload(ctx context.Context, c *Client, room string, limit int) ([]*chatv1.HistoryMessage, error) {
	r.mu.Lock()
	var gap [2]*chatv1.Position
	room = roomKey(room)
	if rp := r.rooms[room]; rp != nil && rp.gap != nil {
		gap = *rp.gap
	}
	r.mu.Unlock()
	if gap[1] == nil {
		return nil, nil
	}
	var after uint64
	if gap[0] != nil && gap[0].Epoch == gap[1].Epoch {
		after = gap[0].Offset
	}
	h, err := c.HistorySince(ctx, room, after, 0)
	if err != nil {
		return nil, err
	}
	if h.Epoch != gap[1].Epoch {
		return nil, nil // the log started again since: what was missing is gone
	}
	msgs := slices.DeleteFunc(h.Messages, func(m *chatv1.HistoryMessage) bool { return m.Offset > gap[1].Offset })
	if limit > 0 && len(msgs) > limit {
		msgs = msgs[len(msgs)-limit:]
	}
	r.mu.Lock()
	if rp := r.rooms[room]; rp != nil && rp.gap != nil && *rp.gap == gap {
		rp.gap = nil
	}
	r.mu.Unlock()
	return msgs, nil
}
