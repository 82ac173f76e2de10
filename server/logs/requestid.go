package logs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// RequestIDHeader carries a request id over HTTP; as gRPC metadata it is
// RequestIDMetadata. A client (or a proxy in front) may set it; a node
// makes one otherwise, and answers with it in either case.
const (
	RequestIDHeader   = "X-Request-Id"
	RequestIDMetadata = "x-request-id"
)

// goodID is a request id a node takes from a client as it is: short, and
// nothing that could forge a log line.
var goodID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// NewID returns a fresh random id.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func idOr(given string) string {
	if goodID.MatchString(given) {
		return given
	}
	return NewID()
}

// WithRequestID returns a context whose log records carry id as request_id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return With(ctx, slog.String("request_id", id))
}

// HTTP gives every request a request id: the client's X-Request-Id if it is
// a sane one, else a new one. The id is in the request's context (for log
// records), in its X-Request-Id header (which the REST gateway passes on to
// gRPC) and in the response's. log gets one debug record per request, with
// the path but never the query, which may hold a token.
func HTTP(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := idOr(r.Header.Get(RequestIDHeader))
		r.Header.Set(RequestIDHeader, id)
		w.Header().Set(RequestIDHeader, id)
		ctx := WithRequestID(r.Context(), id)
		log.DebugContext(ctx, "http request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// grpcID returns the request id of a call's metadata, or a new one.
func grpcID(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, RequestIDMetadata); len(v) > 0 {
		return idOr(v[0])
	}
	return NewID()
}

// UnaryServer gives every unary call a request id, as HTTP does, sends it
// back in the response header, and logs the call's end at debug level.
func UnaryServer(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		id := grpcID(ctx)
		ctx = WithRequestID(ctx, id)
		grpc.SetHeader(ctx, metadata.Pairs(RequestIDMetadata, id))
		start := time.Now()
		resp, err := next(ctx, req)
		log.DebugContext(ctx, "rpc", "method", info.FullMethod, "code", status.Code(err).String(), "took", time.Since(start))
		return resp, err
	}
}

// StreamServer gives every stream a request id, as UnaryServer does.
func StreamServer(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		id := grpcID(ss.Context())
		ctx := WithRequestID(ss.Context(), id)
		ss.SetHeader(metadata.Pairs(RequestIDMetadata, id))
		start := time.Now()
		err := next(srv, StreamWithContext(ctx, ss))
		log.DebugContext(ctx, "rpc", "method", info.FullMethod, "code", status.Code(err).String(), "took", time.Since(start))
		return err
	}
}

// contextStream is a stream with a context of its own.
type contextStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *contextStream) Context() context.Context { return s.ctx }

// StreamWithContext returns ss with ctx as its context, for stream
// interceptors that add to it.
func StreamWithContext(ctx context.Context, ss grpc.ServerStream) grpc.ServerStream {
	return &contextStream{ServerStream: ss, ctx: ctx}
}
