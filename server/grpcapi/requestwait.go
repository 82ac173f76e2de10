package grpcapi

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/tap"
)

// RequestWait bounds the wait for a call's request message: a call whose
// message has not come whole within d of its headers is cancelled.
// Without it a client, before any token is looked at, could send the
// start of a message and nothing more, and hold the stream and what it
// sent (up to the 64 KiB a message may have) for ever: a server's
// keepalive pings keep the connection alive, and a connection with a call
// open is never idle. It is the gRPC side of the REST body's bound.
//
// The wait starts when the call's headers arrive (a tap handle) and ends
// once the call's one request message is read (a unary call; a
// server-streaming one such as Health.Watch), or at once for a call whose
// client streams (Connect), since those messages are the stream's own
// business. Calls served through ServeHTTP (gRPC-Web) have no tap and
// no wait. The options must come before every other interceptor.
func RequestWait(d time.Duration) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.InTapHandle(func(ctx context.Context, _ *tap.Info) (context.Context, error) {
			ctx, cancel := context.WithCancelCause(ctx)
			t := time.AfterFunc(d, func() { cancel(errRequestLate) })
			return context.WithValue(ctx, requestWaitKey{}, t), nil
		}),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
			requestCame(ctx)
			return next(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
			if info.IsClientStream {
				requestCame(ss.Context())
				return next(srv, ss)
			}
			return next(srv, firstRecvEndsWait{ss}) // one request, then answers (Health.Watch)
		}),
	}
}

// errRequestLate is why a call whose message did not come in time ends.
var errRequestLate = errors.New("request message not received in time")

type requestWaitKey struct{}

// requestCame ends the wait of the call of ctx, if it has one.
func requestCame(ctx context.Context) {
	if t, ok := ctx.Value(requestWaitKey{}).(*time.Timer); ok {
		t.Stop()
	}
}

// firstRecvEndsWait is a server-streaming call whose wait ends once its
// request message is read.
type firstRecvEndsWait struct{ grpc.ServerStream }

func (s firstRecvEndsWait) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	requestCame(s.Context())
	return err
}
