// Package metrics is a Tertulia node's Prometheus metrics: one registry per
// node (never the process-wide default, so that several nodes may run in one
// process), with the Go runtime and process collectors, the gRPC server
// metrics of go-grpc-middleware, and Tertulia's own.
//
// The core does not import Prometheus: the hub and the Redis broker keep
// plain atomic counters, read here by collectors at scrape time, as is the
// size of a history held on the node (a broker's hub.HistoryStats), and the
// hub reports publish latencies through hub.Config.ObservePublish. What only an
// adapter knows (connections by transport) is counted here directly.
//
// The metric names are part of the operator's contract (README, "Operating
// Tertulia"); change them only with the README.
package metrics

import (
	"log/slog"
	"net/http"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/hub"
)

// The transports a connection may arrive by, as the values of the
// transport label of tertulia_connections.
const (
	GRPC      = "grpc"
	WebSocket = "websocket"
	GRPCWeb   = "grpc-web"
)

// Registry is one node's metrics. Its methods are safe for concurrent use.
type Registry struct {
	reg  *prometheus.Registry
	grpc *grpcprom.ServerMetrics

	conns         *prometheus.GaugeVec
	publish       prometheus.Histogram
	publishErrors prometheus.Counter
}

// New returns a registry holding the Go runtime and process collectors, the
// gRPC server metrics (see GRPCServerOptions) and Tertulia's connection and
// publish metrics. The hub's and the Redis broker's counters join it with
// ObserveHub and ObserveRedis.
func New() *Registry {
	r := &Registry{
		reg: prometheus.NewRegistry(),
		grpc: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.001, .005, .025, .1, .5, 2.5, 10, 60, 600, 3600}))),
		conns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tertulia_connections",
			Help: "Client connections open on this node, by transport (grpc, websocket, grpc-web).",
		}, []string{"transport"}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tertulia_broker_publish_duration_seconds",
			Help:    "Time the hub waited for the broker to publish one event (for Redis: until it came back to this node).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tertulia_broker_publish_errors_total",
			Help: "Publishes to the broker that failed: the event reached nobody.",
		}),
	}
	for _, t := range []string{GRPC, WebSocket, GRPCWeb} {
		r.conns.WithLabelValues(t) // shown as 0 before the first connection
	}
	r.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.grpc, r.conns, r.publish, r.publishErrors,
	)
	return r
}

// Handler serves the registry in the Prometheus exposition formats. Errors
// gathering a metric are logged to log and the rest still served.
func (r *Registry) Handler(log *slog.Logger) http.Handler {
	opts := promhttp.HandlerOpts{Registry: r.reg, ErrorHandling: promhttp.ContinueOnError}
	if log != nil {
		opts.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	return promhttp.HandlerFor(r.reg, opts)
}

// GRPCServerOptions are the interceptors that fill the grpc_server_*
// metrics; put them first in the server's chains so that every call is
// counted, refused ones included. Call InitializeGRPC once the services are
// registered.
func (r *Registry) GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(r.grpc.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(r.grpc.StreamServerInterceptor()),
	}
}

// InitializeGRPC shows every method of srv in the gRPC metrics at zero
// before its first call.
func (r *Registry) InitializeGRPC(srv *grpc.Server) { r.grpc.InitializeMetrics(srv) }

// ObservePublish records one publish to the broker; it is the hub's
// Config.ObservePublish.
func (r *Registry) ObservePublish(took time.Duration, err error) {
	r.publish.Observe(took.Seconds())
	if err != nil {
		r.publishErrors.Inc()
	}
}

// Connected counts a connection of transport as open until the returned
// function is called (once).
func (r *Registry) Connected(transport string) (closed func()) {
	g := r.conns.WithLabelValues(transport)
	g.Inc()
	return g.Dec
}

// ObserveHub adds the counters of h to the registry.
func (r *Registry) ObserveHub(h *hub.Hub) { r.reg.MustRegister(hubCollector{h}) }

// ObserveHandshakes adds the count of WebSocket upgrades refused for an
// oversized request head, read from refused at scrape time.
func (r *Registry) ObserveHandshakes(refused func() int64) {
	r.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "tertulia_handshakes_refused_total",
		Help: "WebSocket upgrades refused with 431: a request head over 8 KiB or 64 headers.",
	}, func() float64 { return float64(refused()) }))
}

// ObserveRedis adds the counters of a Redis broker to the registry.
func (r *Registry) ObserveRedis(m *redis.Metrics) { r.reg.MustRegister(redisCollector{m}) }
