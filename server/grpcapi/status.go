package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
)

// How the core's outcomes map onto gRPC statuses, here at the boundary: two
// tables, one for the codes of the core's refusals, one for the reasons it
// ends a session for.

// errorCodes maps the catalog's codes (hub.Code*) onto gRPC status codes.
// A code missing here is an invalid argument.
var errorCodes = map[string]codes.Code{
	hub.CodeUnavailable:  codes.Unavailable,
	hub.CodeTooManyConns: codes.ResourceExhausted,
	hub.CodeForbidden:    codes.PermissionDenied,
}

// streamCodes maps each reason the core ends a session for onto the status
// Connect returns. A reason missing here ends it with Aborted.
var streamCodes = map[hub.DisconnectCode]codes.Code{
	hub.DisconnectSlow:       codes.ResourceExhausted,
	hub.DisconnectShutdown:   codes.Unavailable,
	hub.DisconnectRestart:    codes.Unavailable,
	hub.DisconnectWriteError: codes.Aborted,
	hub.DisconnectDone:       codes.OK,
	hub.DisconnectFlood:      codes.ResourceExhausted,
	hub.DisconnectExpired:    codes.Unauthenticated,
	hub.DisconnectKicked:     codes.PermissionDenied,
	hub.DisconnectBanned:     codes.PermissionDenied,
}

// streamReasons names why the core ended a session, as the ErrorInfo reason
// its status carries (see chatv1.ReasonOf): clients tell an expired token
// from an administrator's disconnect or ban by it.
var streamReasons = map[hub.DisconnectCode]string{
	hub.DisconnectExpired: chatv1.ReasonTokenExpired,
	hub.DisconnectKicked:  chatv1.ReasonDisconnected,
	hub.DisconnectBanned:  chatv1.ReasonBanned,
}

// statusFromError maps an error of the core onto a gRPC status. An error
// without a code of the core (its broker out of reach, say) is Unavailable
// with a fixed message: its text names internal hosts and addresses, which
// are the operator's business, not the client's.
func statusFromError(err error) error {
	var he *hub.Error
	if errors.As(err, &he) {
		code, ok := errorCodes[he.Code]
		if !ok {
			code = codes.InvalidArgument
		}
		return status.Error(code, he.Message)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Unavailable, unavailableMessage)
}

// failed is statusFromError for a service's calls, which also logs to log a
// failure that is not the client's own (its text is kept from the client).
func failed(ctx context.Context, log *slog.Logger, err error) error {
	var he *hub.Error
	if !errors.As(err, &he) && ctx.Err() == nil {
		log.WarnContext(ctx, "call failed", "err", err)
	}
	return statusFromError(err)
}

// unavailableMessage is what a client is told of a failure that is not its
// own: the server cannot do it now.
const unavailableMessage = "service unavailable, try again later"

// statusFromDisconnect is the status Connect returns when the core has
// ended its session for d: nil for a session drained as the client asked.
func statusFromDisconnect(d hub.Disconnect) error {
	code, ok := streamCodes[d.Code]
	if !ok {
		code = codes.Aborted
	}
	if code == codes.OK {
		return nil
	}
	if reason, ok := streamReasons[d.Code]; ok {
		return chatv1.ReasonStatus(code, d.Reason, reason)
	}
	return status.Error(code, d.Reason)
}

// openStatus is the status of the hub's refusal to open a session for who,
// the one Connect returns: a banned user gets PermissionDenied with the
// reason "banned" (see chatv1.ReasonOf); any other refusal is the status of
// the error (failed): a connection limit's code, Unavailable for a node
// shutting down or a cluster out of reach (logged), so that the client
// comes back later.
func (s *ChatService) openStatus(ctx context.Context, who hub.Identity, err error) error {
	var banned *hub.BannedError
	if errors.As(err, &banned) {
		return chatv1.ReasonStatus(codes.PermissionDenied, banned.Error(), chatv1.ReasonBanned)
	}
	if errors.Is(err, hub.ErrShuttingDown) {
		return statusFromError(err) // nothing to log
	}
	return failed(ctx, s.log, fmt.Errorf("open session for %s: %w", who.UserID, err))
}
