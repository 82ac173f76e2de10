package grpcapi

import (
	"context"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// ListMembers implements chat.v1.ChatService: one page of a room's members,
// as GET /api/v1/websocket/rooms/{room}/members?limit=&cursor= shows it. A
// bad room, limit or cursor is InvalidArgument (REST 400); a room the
// caller may not join, PermissionDenied (REST 403).
func (s *ChatService) ListMembers(ctx context.Context, req *chatv1.ListMembersRequest) (*chatv1.ListMembersResponse, error) {
	if err := s.MayRead(ctx, req.GetRoom()); err != nil {
		return nil, err // only for those who may join the room (REST 403)
	}
	page, err := s.hub.Members(ctx, req.GetRoom(), int(req.GetLimit()), req.GetCursor())
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	out := &chatv1.ListMembersResponse{
		Room:         page.Room,
		Members:      make([]*chatv1.Member, len(page.Members)),
		NextCursor:   page.Next,
		TotalMembers: int32(page.Total),
	}
	for i, m := range page.Members {
		out.Members[i] = &chatv1.Member{UserId: m.UserID, Username: m.Name, Connections: int32(m.Connections)}
	}
	return out, nil
}
