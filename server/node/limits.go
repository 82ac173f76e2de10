package node

import (
	"math"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/tertulia/tertulia/server/grpcapi"
	"github.com/tertulia/tertulia/server/hub"
)

// Limits are every limit of DESIGN.md's "Limits" a node applies: the
// core's rates and connection counts, and its transports' bounds. The zero
// value of each field means its default; hub.Off turns it off.
// ConnsPerIP bounds, besides an address's sessions, the TCP connections it
// holds open to the gRPC port (see capPerAddress).
type Limits struct {
	hub.Limits `yaml:",inline"`
	// GRPCStreamsPerConn bounds the concurrent streams of one gRPC
	// connection (HTTP/2 MAX_CONCURRENT_STREAMS). grpc-go also runs at most
	// that many handlers per connection, which bounds what an HTTP/2 rapid
	// reset (HEADERS then RST_STREAM, over and over) can make it do.
	// Default 100.
	GRPCStreamsPerConn int `yaml:"grpc_streams_per_conn"`
	// HTTPIdleTimeout closes a keep-alive HTTP connection idle this long,
	// and a gRPC connection with no stream for as long. Default 120s.
	HTTPIdleTimeout time.Duration `yaml:"http_idle_timeout"`
}

// DefaultLimits are the limits of a node configured with none: DESIGN.md's
// defaults, which the --limit-* flags show.
func DefaultLimits() Limits { return Limits{Limits: hub.DefaultLimits()}.withDefaults() }

func (l Limits) withDefaults() Limits {
	if l.GRPCStreamsPerConn == 0 {
		l.GRPCStreamsPerConn = 100
	}
	if l.HTTPIdleTimeout == 0 {
		l.HTTPIdleTimeout = 120 * time.Second
	}
	return l
}

// maxHeaderBytes bounds the request line and headers of a plain HTTP
// request (net/http adds 4 KiB of slack); the bridge bounds an upgrade's
// head the same.
const maxHeaderBytes = 8 << 10

// maxGRPCHeaderBytes bounds the headers of a gRPC call as an HTTP request's
// are, slack included: grpc-go would take 16 MiB of them, before any token
// is looked at. A call over it fails without reaching a handler.
const maxGRPCHeaderBytes = maxHeaderBytes + 4<<10

// grpcOptions are the gRPC server's limits: streams per connection,
// keepalive enforcement, idle connections, the size of a call's headers.
func (l Limits) grpcOptions() []grpc.ServerOption {
	streams := uint32(math.MaxUint32)
	if l.GRPCStreamsPerConn > 0 {
		streams = uint32(l.GRPCStreamsPerConn)
	}
	params := keepalive.ServerParameters{Time: grpcapi.KeepaliveTime, Timeout: grpcapi.KeepaliveTimeout}
	if l.HTTPIdleTimeout > 0 {
		params.MaxConnectionIdle = l.HTTPIdleTimeout
	}
	// No MaxConnectionAge: a Connect stream is a chat session that may
	// last all day, and ending it on a timer would only make its client
	// reconnect; the connection counts bound what a client can hold.
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(streams),
		grpc.MaxHeaderListSize(maxGRPCHeaderBytes),
		grpc.KeepaliveParams(params),
		// Pings more often than this (a ping flood) close the connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: grpcapi.KeepaliveMinTime, PermitWithoutStream: true}),
	}
}

// limitHTTP applies the limits of plain HTTP to srv: the size of a
// request's head, and the idle keep-alive timeout.
func (l Limits) limitHTTP(srv *http.Server) {
	srv.MaxHeaderBytes = maxHeaderBytes
	srv.IdleTimeout = l.HTTPIdleTimeout // negative: no timeout
}
