package grpcapi

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
)

// AuthService implements chat.v1.AuthService. Serve it in dev mode only.
type AuthService struct {
	chatv1.UnimplementedAuthServiceServer
	auth *auth.Authenticator
	// wsBase is where websocket_url answers point when the call did not
	// come through the HTTP gateway: the node's HTTP address, such as
	// "ws://localhost:8000".
	wsBase atomic.Pointer[string]
}

// NewAuthService returns the token service. websocket_url answers point at
// the host the REST call was made to, or at wsBase for direct gRPC calls
// (see SetWebSocketBase).
func NewAuthService(a *auth.Authenticator, wsBase string) *AuthService {
	s := &AuthService{auth: a}
	s.SetWebSocketBase(wsBase)
	return s
}

// SetWebSocketBase sets where websocket_url answers to direct gRPC calls
// point, such as "ws://localhost:8000": a node learns it once it has its
// HTTP listener. It is safe to call while the service runs.
func (s *AuthService) SetWebSocketBase(wsBase string) {
	wsBase = strings.TrimRight(wsBase, "/")
	s.wsBase.Store(&wsBase)
}

// websocketBase is the ws:// origin the caller reached us on.
func (s *AuthService) websocketBase(ctx context.Context) string {
	host := metadata.ValueFromIncomingContext(ctx, "x-forwarded-host")
	if len(host) == 0 || host[0] == "" {
		return *s.wsBase.Load()
	}
	return "ws://" + host[0]
}

// maxUsername bounds the usernames the dev token endpoint accepts.
const maxUsername = 64

// IssueToken implements chat.v1.AuthService.
func (s *AuthService) IssueToken(ctx context.Context, req *chatv1.IssueTokenRequest) (*chatv1.IssueTokenResponse, error) {
	name := strings.TrimSpace(req.GetUsername())
	if name == "" || len(name) > maxUsername {
		return nil, status.Errorf(codes.InvalidArgument, "username must be 1 to %d characters", maxUsername)
	}
	tok, err := s.auth.Issue(name, req.GetAdmin())
	if errors.Is(err, auth.ErrInvalidUser) {
		return nil, status.Errorf(codes.InvalidArgument, "username: %v", err)
	}
	if err != nil {
		return nil, status.Error(codes.Internal, "could not sign token")
	}
	return &chatv1.IssueTokenResponse{
		AccessToken:  tok,
		TokenType:    "bearer",
		WebsocketUrl: s.websocketBase(ctx) + "/api/v1/ws/authenticated?token=" + url.QueryEscape(tok),
	}, nil
}
