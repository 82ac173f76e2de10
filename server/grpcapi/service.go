package grpcapi

import (
	"context"
	"log/slog"
	"sync"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
)

// ChatService implements chat.v1.ChatService over a hub.
type ChatService struct {
	chatv1.UnimplementedChatServiceServer
	hub *hub.Hub
	log *slog.Logger

	mu      sync.Mutex // protects formats
	formats map[string]*frameEncoder
}

// NewChatService returns the service for h.
func NewChatService(h *hub.Hub, log *slog.Logger) *ChatService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ChatService{hub: h, log: log, formats: make(map[string]*frameEncoder)}
}

func (s *ChatService) encoderFor(f WireFormat) *frameEncoder {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.formats[f.Name]
	if e == nil {
		e = &frameEncoder{encode: f.Encode}
		s.formats[f.Name] = e
	}
	return e
}

// Broadcast implements chat.v1.ChatService. The caller must be an admin.
func (s *ChatService) Broadcast(ctx context.Context, req *chatv1.BroadcastRequest) (*chatv1.BroadcastResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if req.GetRoom() != "" {
		if err := s.MayRead(ctx, req.GetRoom()); err != nil {
			return nil, err
		}
	}
	n, err := s.hub.Broadcast(ctx, req.GetMessage(), req.GetRoom())
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	who, _ := auth.FromContext(ctx)
	texts := s.hub.Texts()
	lang := texts.Match(who.Locale, acceptLanguage(ctx))
	msg := texts.Sprintf(lang, "Message sent to everyone")
	if req.GetRoom() != "" {
		msg = texts.Sprintf(lang, "Message sent to room %s", req.GetRoom())
	}
	return &chatv1.BroadcastResponse{Message: msg, Recipients: int32(n)}, nil
}

// GetStats implements chat.v1.ChatService.
func (s *ChatService) GetStats(ctx context.Context, _ *chatv1.GetStatsRequest) (*chatv1.GetStatsResponse, error) {
	st, err := s.hub.Stats(ctx)
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	rooms := s.readableRooms(ctx, st.Rooms)
	return &chatv1.GetStatsResponse{
		TotalConnections: int32(st.TotalConnections),
		UniqueUsers:      int32(len(st.Users)),
		ActiveRooms:      int32(len(rooms)),
		Rooms:            rooms,
	}, nil
}

// ListRooms implements chat.v1.ChatService.
func (s *ChatService) ListRooms(ctx context.Context, _ *chatv1.ListRoomsRequest) (*chatv1.ListRoomsResponse, error) {
	st, err := s.hub.Stats(ctx)
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	rooms := s.readableRooms(ctx, st.Rooms)
	return &chatv1.ListRoomsResponse{Rooms: rooms, TotalRooms: int32(len(rooms))}, nil
}

// ListUsers implements chat.v1.ChatService.
func (s *ChatService) ListUsers(ctx context.Context, _ *chatv1.ListUsersRequest) (*chatv1.ListUsersResponse, error) {
	st, err := s.hub.Stats(ctx)
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	users := st.Users
	if users == nil {
		users = []string{}
	}
	return &chatv1.ListUsersResponse{ConnectedUsers: users, TotalUsers: int32(len(users))}, nil
}

// readableRooms is rooms with their member counts, less those the caller
// may not join (MayRead): a private namespace's rooms unless the token
// grants them, and a guest-free namespace's rooms to a guest. A room is
// listed, like its members and its history, only to those who may join
// it, so that its name does not tell others what it is about.
func (s *ChatService) readableRooms(ctx context.Context, rooms map[string]int) map[string]int32 {
	who, ns := caller(ctx), s.hub.Namespaces()
	out := make(map[string]int32, len(rooms))
	for r, n := range rooms {
		if ns.MayJoin(who, r) == nil { // nil at once for an admin
			out[r] = int32(n)
		}
	}
	return out
}
