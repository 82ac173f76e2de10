package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"
)

// Config describes one run. Zero values mean the documented defaults.
type Config struct {
	// Scenario is fanout, rooms, idle, churn or reconnect.
	Scenario string
	// Transport is ws (JSON over the WebSocket bridge) or grpc.
	Transport string
	// Client is the WebSocket client: own (default; gobwas/ws frames,
	// server frames classified by scanning their bytes) or coder
	// (github.com/coder/websocket, read as a lean production client of the
	// bridge would). Only for ws.
	Client string
	// OfferProtocol makes the own client offer the tertulia.v1
	// subprotocol, with which the server may put several events in one
	// frame; the coder client always offers it. Default: a plain client,
	// one event per frame.
	OfferProtocol bool
	// Protocol is what the server speaks: tertulia (default), or
	// centrifugo, Centrifugo v6's bidirectional JSON protocol over
	// WebSocket (centrifugo.go), to measure Centrifugo on the same machine
	// with the same scenarios; then HTTPAddr is Centrifugo's, Transport is
	// ws, the client is the centrifugo one (built on coder/websocket; Client
	// and OfferProtocol are not used), the room is a channel and JWTSecret
	// is Centrifugo's token HMAC secret.
	Protocol string
	// HTTPAddr is the server's HTTP host:port (WebSocket). Default 127.0.0.1:8000.
	HTTPAddr string
	// GRPCAddr is the server's gRPC host:port. Default 127.0.0.1:9090.
	GRPCAddr string
	// PubHTTPAddr and PubGRPCAddr put fanout's publisher on another node of
	// a cluster (subscribers stay on HTTPAddr/GRPCAddr), to measure delivery
	// across nodes. Default: the same node.
	PubHTTPAddr string
	PubGRPCAddr string
	// AllowRemote lets the tool target a non-loopback address.
	AllowRemote bool
	// TLS makes the own WebSocket client speak wss: TLS on HTTPAddr,
	// trusting whatever certificate the server presents (a load test's is
	// a throwaway one). Only that client speaks it.
	TLS bool

	// JWTSecret, when set, signs a token per user as `tertulia token` does.
	// Otherwise Token is used for every connection; with neither, the
	// connections are anonymous guests.
	JWTSecret []byte
	Token     string
	// Users is how many distinct users the connections belong to
	// (connection i is user "u<i mod Users>"). Default: one per connection,
	// as a deployment has. Fewer users share connections, which is lighter
	// on a server that announces each user's first connection to everyone:
	// set it only to compare with that.
	Users int

	// Conns is the number of subscribers (fanout, churn) or of connections
	// (rooms, idle). Default 1000.
	Conns int
	// Rooms is the number of rooms (rooms, idle). Defaults: rooms Conns/10,
	// idle Conns/10.
	Rooms int
	// Room is the fanout, churn and reconnect room, which every subscriber
	// joins. Default "bench"; "-" means the lobby (every connection, no
	// join), for comparison only.
	Room string
	// Rate is messages per second: in total for fanout and churn, per
	// member for rooms. Default 1000 (fanout, churn), 1 (rooms).
	Rate float64
	// Duration is how long messages are published (fanout, rooms, churn,
	// and reconnect after its storm) or connections held (idle). Default 10s.
	Duration time.Duration
	// Drain bounds the wait for the last deliveries once publishing stops.
	// Default 5s.
	Drain time.Duration
	// ChurnRate is how many connections churn opens (and closes) per second.
	// Default 100.
	ChurnRate float64

	// Dialers is how many connections are set up at once. Default 64.
	Dialers int
	// SetupTimeout bounds setting up all the connections, and separately
	// the reconnect storm. Default 2m.
	SetupTimeout time.Duration
	// StreamsPerConn is how many gRPC streams share one HTTP/2 connection.
	// Default 1.
	StreamsPerConn int

	// ServerPID, when set, is the server process whose CPU and RSS are read
	// from /proc.
	ServerPID int
	// Restart, when set, makes the reconnect storm a real restart of the
	// server (WebSocket only): it is called with every connection set up,
	// must end the server at once (as kill -9 or a crash would, or as a
	// shutdown does) and start it again on the same addresses, and returns
	// the new server's process id (0 if unknown) once it serves. Each client
	// reconnects as soon as it sees its connection end, with backoff, while
	// the server is still starting.
	Restart func(ctx context.Context) (pid int, err error)
	// ProfileURL, when set with ProfileOut, is the server's pprof CPU
	// profile endpoint (http://HOST:PORT/debug/pprof/profile): the tool
	// records the server's profile over the measured phase into ProfileOut.
	ProfileURL string
	ProfileOut string
	// Progress receives one line per phase. Default: discard.
	Progress io.Writer
	// Warnings receives a line for each figure of the run that is not
	// what was asked for, such as a publishing rate that fell short of
	// Rate; each line starts with "warning: ". Default: os.Stderr, as
	// these lines must be seen even when the progress is not.
	Warnings io.Writer
}

// The scenarios, transports and WebSocket clients Run knows.
var (
	Scenarios  = []string{"fanout", "rooms", "idle", "churn", "reconnect"}
	Transports = []string{"ws", "grpc"}
	Clients    = []string{"own", "coder"}
	Protocols  = []string{"tertulia", "centrifugo"}
)

// maxConns bounds Conns: a few more than the 20,000 open files a process may
// have here would fail anyway, and a typo should not open a million sockets.
const maxConns = 100_000

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8000"
	}
	if c.GRPCAddr == "" {
		c.GRPCAddr = "127.0.0.1:9090"
	}
	if c.PubHTTPAddr == "" {
		c.PubHTTPAddr = c.HTTPAddr
	}
	if c.PubGRPCAddr == "" {
		c.PubGRPCAddr = c.GRPCAddr
	}
	if c.Protocol == "" {
		c.Protocol = "tertulia"
	}
	switch {
	case c.Protocol == "centrifugo":
		c.Client = "centrifugo" // the one client of that protocol, so reported
	case c.Client == "":
		c.Client = "own"
	}
	def(&c.Conns, 1000)
	def(&c.Users, c.Conns)
	def(&c.Rooms, max(1, c.Conns/10))
	if c.Room == "" {
		c.Room = "bench"
	}
	if c.Rate <= 0 {
		c.Rate = 1000
		if c.Scenario == "rooms" {
			c.Rate = 1
		}
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 5 * time.Second
	}
	if c.ChurnRate <= 0 {
		c.ChurnRate = 100
	}
	def(&c.Dialers, 64)
	if c.SetupTimeout <= 0 {
		c.SetupTimeout = 2 * time.Minute
	}
	def(&c.StreamsPerConn, 1)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Warnings == nil {
		c.Warnings = os.Stderr
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if !contains(Scenarios, c.Scenario) {
		errs = append(errs, fmt.Errorf("unknown scenario %q: want one of %v", c.Scenario, Scenarios))
	}
	if !contains(Transports, c.Transport) {
		errs = append(errs, fmt.Errorf("unknown transport %q: want one of %v", c.Transport, Transports))
	}
	if !contains(Protocols, c.Protocol) {
		errs = append(errs, fmt.Errorf("unknown protocol %q: want one of %v", c.Protocol, Protocols))
	}
	if c.Protocol == "centrifugo" {
		errs = append(errs, c.validateCentrifugo()...)
	} else if !contains(Clients, c.Client) {
		errs = append(errs, fmt.Errorf("unknown client %q: want one of %v", c.Client, Clients))
	} else if c.Client != "own" && c.Transport != "ws" {
		errs = append(errs, fmt.Errorf("client %q is a WebSocket client: want transport ws", c.Client))
	}
	if c.TLS && (c.Protocol != "tertulia" || c.Transport != "ws" || c.Client != "own") {
		errs = append(errs, errors.New("tls is spoken by the own WebSocket client of a tertulia server: want transport ws, client own"))
	}
	if c.Restart != nil && (c.Scenario != "reconnect" || c.Transport != "ws" || c.Protocol != "tertulia" || c.TLS) {
		// Over TLS the restarter's plain /health check would never pass.
		errs = append(errs, errors.New("a restart is for the reconnect scenario over ws (without tls) of a tertulia server"))
	}
	if c.Conns > maxConns {
		errs = append(errs, fmt.Errorf("%d connections is over the limit of %d", c.Conns, maxConns))
	}
	if c.Rooms > c.Conns && (c.Scenario == "rooms" || c.Scenario == "idle") {
		errs = append(errs, fmt.Errorf("%d rooms for %d connections: want at most one room per connection", c.Rooms, c.Conns))
	}
	if c.Rate > 1e7 {
		errs = append(errs, fmt.Errorf("rate %g/s is over the limit of 1e7", c.Rate))
	}
	if c.Duration > time.Hour {
		errs = append(errs, fmt.Errorf("duration %v is over the limit of 1h", c.Duration))
	}
	addrs := []string{c.HTTPAddr, c.PubHTTPAddr}
	if c.Transport == "grpc" {
		addrs = []string{c.GRPCAddr, c.PubGRPCAddr}
	}
	for _, addr := range addrs {
		if err := checkLoopback(addr, c.AllowRemote); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validateCentrifugo checks what the centrifugo protocol needs: the
// WebSocket transport, a channel (not the lobby) and a token per user.
func (c Config) validateCentrifugo() []error {
	var errs []error
	if c.Transport != "ws" {
		errs = append(errs, fmt.Errorf("protocol centrifugo is spoken over WebSocket: want transport ws, not %q", c.Transport))
	}
	if c.Room == "-" {
		errs = append(errs, errors.New("protocol centrifugo has no lobby: want a room (a channel)"))
	}
	if len(c.JWTSecret) == 0 && c.Token == "" {
		errs = append(errs, errors.New("protocol centrifugo needs a token: want a jwt secret or a token"))
	}
	return errs
}

// checkLoopback refuses a target that is not on this machine's loopback
// interface, unless allowed: a load test aimed at the wrong host is an attack.
func checkLoopback(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("target %q: %w", addr, err)
	}
	if allowRemote || host == "localhost" || host == "" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target %q is not a loopback address: pass --allow-remote to load a remote server", addr)
}

// checkLoopbackURL is checkLoopback for an http:// URL.
func checkLoopbackURL(raw string, allowRemote bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("profile url %q: %w", raw, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return checkLoopback(host, allowRemote)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
