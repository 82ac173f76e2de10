package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
)

// AdminService implements chat.v1.AdminService over a hub: moderation,
// for callers with the admin role only.
type AdminService struct {
	chatv1.UnimplementedAdminServiceServer
	hub *hub.Hub
	log *slog.Logger
}

// NewAdminService returns the moderation service for h, which logs to log
// (nil: nowhere) the failures it does not tell its callers the cause of.
func NewAdminService(h *hub.Hub, log *slog.Logger) *AdminService {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AdminService{hub: h, log: log}
}

// Bounds on what an administrator's call may carry.
const (
	maxUserID  = hub.MaxUserIDBytes
	maxReason  = 64 // with its prefix, within the 123 bytes of a WebSocket close reason
	maxBanTime = 100 * 365 * 24 * time.Hour
)

// requireAdmin refuses callers without a token (Unauthenticated) or
// without the admin role (PermissionDenied).
func requireAdmin(ctx context.Context) error {
	who, ok := auth.FromContext(ctx)
	if !ok || who.Guest {
		return status.Error(codes.Unauthenticated, "authentication required")
	}
	if !who.Admin {
		return status.Error(codes.PermissionDenied, "admin role required")
	}
	return nil
}

// checkArgs refuses a user or a reason out of bounds, with one status that
// names each (a status joined with another would carry its own "rpc
// error: code = ..." text into the message).
func checkArgs(user, reason string) error {
	var bad []string
	if strings.TrimSpace(user) == "" || len(user) > maxUserID {
		bad = append(bad, fmt.Sprintf("user must be 1 to %d bytes", maxUserID))
	}
	if len(reason) > maxReason {
		bad = append(bad, fmt.Sprintf("reason must be at most %d bytes", maxReason))
	}
	if len(bad) == 0 {
		return nil
	}
	return status.Error(codes.InvalidArgument, strings.Join(bad, "; "))
}

// DisconnectUser implements chat.v1.AdminService.
func (s *AdminService) DisconnectUser(ctx context.Context, req *chatv1.DisconnectUserRequest) (*chatv1.DisconnectUserResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := checkArgs(req.GetUser(), req.GetReason()); err != nil {
		return nil, err
	}
	n, err := s.hub.DisconnectUser(ctx, req.GetUser(), req.GetReason())
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	return &chatv1.DisconnectUserResponse{Connections: int32(n)}, nil
}

// KickUser implements chat.v1.AdminService.
func (s *AdminService) KickUser(ctx context.Context, req *chatv1.KickUserRequest) (*chatv1.KickUserResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := checkArgs(req.GetUser(), ""); err != nil {
		return nil, err
	}
	room, rerr := hub.RoomName(req.GetRoom())
	if rerr != nil {
		return nil, failed(ctx, s.log, rerr)
	}
	if err := s.hub.Kick(ctx, room, req.GetUser()); err != nil {
		return nil, failed(ctx, s.log, err)
	}
	return &chatv1.KickUserResponse{Room: room, User: req.GetUser()}, nil
}

// BanUser implements chat.v1.AdminService.
func (s *AdminService) BanUser(ctx context.Context, req *chatv1.BanUserRequest) (*chatv1.BanUserResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := checkArgs(req.GetUser(), req.GetReason()); err != nil {
		return nil, err
	}
	d, err := time.ParseDuration(req.GetDuration())
	if err != nil || d <= 0 || d > maxBanTime {
		return nil, status.Errorf(codes.InvalidArgument, "duration %q: want a positive Go duration such as \"10m\" or \"36h\", at most %v", req.GetDuration(), maxBanTime)
	}
	b, err := s.hub.Ban(ctx, hub.Ban{User: req.GetUser(), Room: req.GetRoom(), Reason: req.GetReason(), Until: time.Now().Add(d)})
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	return &chatv1.BanUserResponse{Ban: banProto(b)}, nil
}

// ListBans implements chat.v1.AdminService.
func (s *AdminService) ListBans(ctx context.Context, _ *chatv1.ListBansRequest) (*chatv1.ListBansResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	bans, err := s.hub.Bans(ctx)
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	out := make([]*chatv1.Ban, len(bans))
	for i, b := range bans {
		out[i] = banProto(b)
	}
	return &chatv1.ListBansResponse{Bans: out, TotalBans: int32(len(out))}, nil
}

// LiftBan implements chat.v1.AdminService.
func (s *AdminService) LiftBan(ctx context.Context, req *chatv1.LiftBanRequest) (*chatv1.LiftBanResponse, error) {
	if err := requireAdmin(ctx); err != nil {
		return nil, err
	}
	if err := checkArgs(req.GetUser(), ""); err != nil {
		return nil, err
	}
	b, err := s.hub.Unban(ctx, req.GetUser(), req.GetRoom())
	if errors.Is(err, hub.ErrNoBan) {
		where := "the server"
		if req.GetRoom() != "" {
			where = "room " + req.GetRoom()
		}
		return nil, status.Errorf(codes.NotFound, "%s is not banned from %s", req.GetUser(), where)
	}
	if err != nil {
		return nil, failed(ctx, s.log, err)
	}
	return &chatv1.LiftBanResponse{Ban: banProto(b)}, nil
}

func banProto(b hub.Ban) *chatv1.Ban {
	return &chatv1.Ban{User: b.User, Room: b.Room, Reason: b.Reason, ExpiresAt: timestamppb.New(b.Until)}
}
