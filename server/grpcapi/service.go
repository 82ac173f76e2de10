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
	in, err := s.Open(stream)
	if err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() { recvErr <- in.receive(stream) }()
	select {
	case <-in.t.done:
		in.detach()
		return in.t.status()
	case err := <-recvErr:
		return in.End(err)
	}
}

// InlineSession is a Connect session whose client frames the caller reads
// and hands over itself, for in-process streams (see Open).
type InlineSession struct {
	ctx  context.Context
	sess *hub.Session
	t    *streamTransport
}

// Open starts a session for stream as Connect does, but leaves reading the
// client's frames to the caller, who hands each to Handle and calls End
// once the client's side is over. Frames are handled in the order of the
// Handle calls, which must not overlap. An in-process stream that can tell
// when a frame is ready can so wait for it without holding a goroutine
// deep in Connect. The stream should implement AbortableStream, to learn
// when the hub ends the session.
func (s *ChatService) Open(stream chatv1.ChatService_ConnectServer) (*InlineSession, error) {
	ctx := stream.Context()
	who, ok := auth.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "authentication required")
	}
	if who.AcceptLanguage == "" {
		who.AcceptLanguage = acceptLanguage(ctx)
	}
	t := &streamTransport{stream: stream, enc: protoEncoder, done: make(chan struct{})}
	if es, ok := stream.(EncodedStream); ok {
		t.encoded, t.enc = es, s.encoderFor(es.WireFormat())
	}
	sess, err := s.hub.Connect(ctx, who, t)
	var banned *hub.BannedError
	if errors.As(err, &banned) {
		return nil, chatv1.ReasonStatus(codes.PermissionDenied, banned.Error(), chatv1.ReasonBanned)
	} else if errors.Is(err, hub.ErrShuttingDown) {
		return nil, status.Error(codes.Unavailable, err.Error())
	} else if err != nil {
		s.log.WarnContext(ctx, "connect", "user", who.UserID, "err", err)
		return nil, status.Error(codes.Unavailable, "could not start session")
	}
	return &InlineSession{ctx: ctx, sess: sess, t: t}, nil
}

// Handle carries out one client frame.
func (in *InlineSession) Handle(f *chatv1.ClientFrame) {
	in.sess.Handle(in.ctx, CommandFromFrame(f))
}

// Refuse answers a client frame the caller could not map, in turn with
// the answers to the frames handed to Handle before it.
func (in *InlineSession) Refuse(id string, err *hub.Error) {
	in.sess.Refuse(id, err)
}

// receive hands the client's frames to the session until Recv fails.
func (in *InlineSession) receive(stream chatv1.ChatService_ConnectServer) error {
	for {
		f, err := stream.Recv()
		if err != nil {
			return err
		}
		in.Handle(f)
	}
}

// End ends the session once the client's side ended with recvErr (io.EOF
// for a half-close, whose queued answers are flushed first) and returns
// what Connect returns: the hub's reason if the hub ended the session.
func (in *InlineSession) End(recvErr error) error {
	defer in.detach()
	select {
	case <-in.t.done:
		if in.t.reason.Code != hub.DisconnectDone {
			return in.t.status()
		}
	default:
	}
	if !errors.Is(recvErr, io.EOF) {
		return recvErr
	}
	// The client half-closed: flush what was queued for it, then end.
	in.sess.Finish()
	select {
	case <-in.t.done:
	case <-in.ctx.Done():
	case <-time.After(detachTimeout):
	}
	return nil
}

// detach takes the session out of the hub: its rooms, the user's presence.
func (in *InlineSession) detach() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(in.ctx), detachTimeout)
	defer cancel()
	in.sess.Close(ctx)
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
