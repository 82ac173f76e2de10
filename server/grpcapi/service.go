package grpcapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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

// detachTimeout bounds the presence updates made after a session ends.
const detachTimeout = 5 * time.Second

// Connect runs one chat session until the client or the server ends it.
// The caller's identity must be in the stream's context (see the
// interceptors, or auth.NewContext for in-process streams).
func (s *ChatService) Connect(stream chatv1.ChatService_ConnectServer) error {
	ctx := stream.Context()
	who, ok := auth.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "authentication required")
	}
	t := &streamTransport{stream: stream, enc: protoEncoder, done: make(chan struct{})}
	if es, ok := stream.(EncodedStream); ok {
		t.encoded, t.enc = es, s.encoderFor(es.WireFormat())
	}
	sess, err := s.hub.Connect(ctx, who, t)
	if errors.Is(err, hub.ErrShuttingDown) {
		return status.Error(codes.Unavailable, err.Error())
	} else if err != nil {
		s.log.Warn("connect", "user", who.UserID, "err", err)
		return status.Error(codes.Unavailable, "could not start session")
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
		defer cancel()
		sess.Close(ctx)
	}()

	if _, ok := stream.(AbortableStream); ok {
		return s.serveInline(ctx, stream, sess, t)
	}
	recvErr := make(chan error, 1)
	go func() { recvErr <- s.receive(ctx, stream, sess) }()
	select {
	case <-t.done:
		return t.status()
	case err := <-recvErr:
		return s.ended(ctx, err, sess, t)
	}
}

// serveInline reads the client's frames in this goroutine: the hub ending
// the session aborts the stream's Recv.
func (s *ChatService) serveInline(ctx context.Context, stream chatv1.ChatService_ConnectServer, sess *hub.Session, t *streamTransport) error {
	err := s.receive(ctx, stream, sess)
	select {
	case <-t.done:
		if t.reason.Code != hub.DisconnectDone {
			return t.status()
		}
	default:
	}
	return s.ended(ctx, err, sess, t)
}

// receive hands the client's frames to the session until Recv fails.
func (s *ChatService) receive(ctx context.Context, stream chatv1.ChatService_ConnectServer, sess *hub.Session) error {
	for {
		f, err := stream.Recv()
		if err != nil {
			return err
		}
		sess.Handle(ctx, CommandFromFrame(f))
	}
}

// ended is what Connect returns once the client's side ended with err.
func (s *ChatService) ended(ctx context.Context, err error, sess *hub.Session, t *streamTransport) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	// The client half-closed: flush what was queued for it, then end.
	sess.Finish()
	select {
	case <-t.done:
	case <-ctx.Done():
	case <-time.After(detachTimeout):
	}
	return nil
}

// Broadcast implements chat.v1.ChatService. The caller must be an admin.
func (s *ChatService) Broadcast(ctx context.Context, req *chatv1.BroadcastRequest) (*chatv1.BroadcastResponse, error) {
	who, ok := auth.FromContext(ctx)
	if !ok || who.Guest {
		return nil, status.Error(codes.Unauthenticated, "authentication required")
	}
	if !who.Admin {
		return nil, status.Error(codes.PermissionDenied, "admin role required")
	}
	n, err := s.hub.Broadcast(ctx, req.GetMessage(), req.GetRoom())
	if err != nil {
		return nil, statusFromError(err)
	}
	msg := "Message sent to everyone"
	if req.GetRoom() != "" {
		msg = "Message sent to room " + req.GetRoom()
	}
	return &chatv1.BroadcastResponse{Message: msg, Recipients: int32(n)}, nil
}

// GetStats implements chat.v1.ChatService.
func (s *ChatService) GetStats(ctx context.Context, _ *chatv1.GetStatsRequest) (*chatv1.GetStatsResponse, error) {
	st, err := s.hub.Stats(ctx)
	if err != nil {
		return nil, statusFromError(err)
	}
	return &chatv1.GetStatsResponse{
		TotalConnections: int32(st.TotalConnections),
		UniqueUsers:      int32(len(st.Users)),
		ActiveRooms:      int32(len(st.Rooms)),
		Rooms:            roomCounts(st.Rooms),
	}, nil
}

// ListRooms implements chat.v1.ChatService.
func (s *ChatService) ListRooms(ctx context.Context, _ *chatv1.ListRoomsRequest) (*chatv1.ListRoomsResponse, error) {
	st, err := s.hub.Stats(ctx)
	if err != nil {
		return nil, statusFromError(err)
	}
	return &chatv1.ListRoomsResponse{Rooms: roomCounts(st.Rooms), TotalRooms: int32(len(st.Rooms))}, nil
}

// ListUsers implements chat.v1.ChatService.
func (s *ChatService) ListUsers(ctx context.Context, _ *chatv1.ListUsersRequest) (*chatv1.ListUsersResponse, error) {
	st, err := s.hub.Stats(ctx)
	if err != nil {
		return nil, statusFromError(err)
	}
	users := st.Users
	if users == nil {
		users = []string{}
	}
	return &chatv1.ListUsersResponse{ConnectedUsers: users, TotalUsers: int32(len(users))}, nil
}

func roomCounts(rooms map[string]int) map[string]int32 {
	out := make(map[string]int32, len(rooms))
	for r, n := range rooms {
		out[r] = int32(n)
	}
	return out
}

// statusFromError maps core errors onto gRPC statuses, here at the boundary.
func statusFromError(err error) error {
	var he *hub.Error
	if errors.As(err, &he) {
		return status.Error(codes.InvalidArgument, he.Message)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Unavailable, err.Error())
}
