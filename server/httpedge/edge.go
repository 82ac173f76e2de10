// Package httpedge is Tertulia's HTTP port: REST through grpc-gateway, the
// health and metrics endpoints, and the mount points for the WebSocket
// bridge, gRPC-Web and the web pages.
package httpedge

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// Config says what the edge serves.
type Config struct {
	// Conn reaches the node's gRPC server; REST calls go through it so that
	// they pass the same interceptors as any gRPC client.
	Conn *grpc.ClientConn
	// Dev serves the test-token endpoint.
	Dev bool
	// Metrics serves /metrics, if set.
	Metrics http.Handler
	// Static holds the web pages, served at /static/. Optional.
	Static fs.FS
	// Index is where "/" redirects. Default /static/index.html.
	Index string
	// Extra handlers mounted as they are (the WebSocket bridge, gRPC-Web).
	Handlers map[string]http.Handler
	// AllowOrigin reports whether a page of another origin may call REST
	// (see withCORS). Nil: none may.
	AllowOrigin func(origin string) bool
	// Stopping, if set, reports whether the node is shutting down: /health
	// then answers 503 {"status":"shutting_down"} and every answer closes
	// its connection, so that a load balancer or a client moves on.
	Stopping func() bool
	// NotReady, if set, says why the node, serving, takes no new sessions
	// ("" when it does): /health then answers 503 with it as its status.
	NotReady func() string
	// BodyTimeout bounds the wait for a REST request's body, from its
	// head (see readBody). Default ReadHeaderTimeout.
	BodyTimeout time.Duration
}

// Handler returns the HTTP handler of the edge.
func Handler(ctx context.Context, cfg Config) (http.Handler, error) {
	gw := runtime.NewServeMux(
		runtime.WithIncomingHeaderMatcher(forwardHeader),
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			// The seed's snake_case field names, and zero counts shown as 0.
			MarshalOptions:   protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		}),
	)
	if err := chatv1.RegisterChatServiceHandlerClient(ctx, gw, chatv1.NewChatServiceClient(cfg.Conn)); err != nil {
		return nil, fmt.Errorf("register chat gateway: %w", err)
	}
	if err := chatv1.RegisterAdminServiceHandlerClient(ctx, gw, chatv1.NewAdminServiceClient(cfg.Conn)); err != nil {
		return nil, fmt.Errorf("register admin gateway: %w", err)
	}
	if cfg.Dev {
		if err := chatv1.RegisterAuthServiceHandlerClient(ctx, gw, chatv1.NewAuthServiceClient(cfg.Conn)); err != nil {
			return nil, fmt.Errorf("register auth gateway: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", withCORS(cfg.AllowOrigin, requireUTF8(requireJSON(readBody(cmp.Or(cfg.BodyTimeout, ReadHeaderTimeout), queryAsBody(gw))))))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Stopping != nil && cfg.Stopping() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting_down", "service": "tertulia"})
			return
		}
		if why := notReady(cfg); why != "" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": why, "service": "tertulia"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "healthy", "service": "tertulia"})
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(chatv1.OpenAPI)
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	if cfg.Static != nil {
		mux.Handle("/static/", http.StripPrefix("/static/", http.FileServerFS(cfg.Static)))
		index := cfg.Index
		if index == "" {
			index = "/static/index.html"
		}
		mux.Handle("GET /{$}", http.RedirectHandler(index, http.StatusFound))
	}
	for pattern, h := range cfg.Handlers {
		mux.Handle(pattern, h)
	}
	if cfg.Stopping == nil {
		return mux, nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An upgrade writes its own Connection header.
		if cfg.Stopping() && r.Header.Get("Upgrade") == "" {
			w.Header().Set("Connection", "close")
		}
		mux.ServeHTTP(w, r)
	}), nil
}

// ReadHeaderTimeout bounds the wait for an HTTP request's head on every
// HTTP server of Tertulia's (http.Server.ReadHeaderTimeout, and the
// WebSocket bridge's listener).
const ReadHeaderTimeout = 10 * time.Second

// queryAsBody lets POST routes take their fields as query parameters, as the
// seed's FastAPI routes did (`POST /broadcast?message=hi`): with no body, the
// query becomes the JSON body the gateway decodes. The body, if any, is in
// memory already (readBody).
func queryAsBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.RawQuery != "" {
			body, _ := io.ReadAll(r.Body)
			if len(bytes.TrimSpace(body)) == 0 {
				fields := make(map[string]string)
				for k, v := range r.URL.Query() {
					fields[k] = v[0]
				}
				body, _ = json.Marshal(fields)
				r.Header.Set("Content-Type", "application/json")
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// forwardHeader passes the request id on to gRPC as x-request-id metadata,
// besides the headers the gateway passes by default.
func forwardHeader(key string) (string, bool) {
	if strings.EqualFold(key, "X-Request-Id") {
		return "x-request-id", true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// routingError answers a request no REST route takes as the gateway does,
// except a method the path does not take: 405, where the gateway answers
// 501 (its Unimplemented), which counts a client's mistake as the
// server's failure.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, status int) {
	if status != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, status)
		return
	}
	writeJSON(w, status, map[string]any{"code": 12, "message": fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)})
}

// notReady is cfg.NotReady's answer, "" without it.
func notReady(cfg Config) string {
	if cfg.NotReady == nil {
		return ""
	}
	return cfg.NotReady()
}
