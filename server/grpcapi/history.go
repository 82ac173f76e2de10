package grpcapi

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// GetHistory implements chat.v1.ChatService: a room's logged messages, the
// latest limit or those after since, for those who may join the room
// (PermissionDenied otherwise, REST 403).
func (s *ChatService) GetHistory(ctx context.Context, req *chatv1.GetHistoryRequest) (*chatv1.GetHistoryResponse, error) {
	if err := s.MayRead(ctx, req.GetRoom()); err != nil {
		return nil, err
	}
	var since *uint64
	if req.Since != nil {
		v := req.GetSince()
		since = &v
	}
	room, page, err := s.hub.History(ctx, req.GetRoom(), since, int(req.GetLimit()))
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	out := &chatv1.GetHistoryResponse{Room: room, Epoch: page.Epoch, Offset: page.Offset,
		Messages: make([]*chatv1.HistoryMessage, 0, len(page.Events))}
	for _, ev := range page.Events {
		out.Messages = append(out.Messages, &chatv1.HistoryMessage{Offset: ev.Offset, Sender: ev.Sender,
			UserId: ev.UserID, Message: ev.Message, Timestamp: timestamppb.New(ev.Time)})
	}
	return out, nil
}
