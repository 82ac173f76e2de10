package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/tertulia/tertulia/bridge"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/metrics"
	"github.com/tertulia/tertulia/server/node"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http-addr", ":8000", "HTTP address: REST, WebSocket, gRPC-Web, pages, metrics")
	grpcAddr := fs.String("grpc-addr", ":9090", "gRPC address")
	dev := fs.Bool("dev", false, "development mode: random secret if none, test-token endpoint, guests, localhost origins")
	secret := fs.String("jwt-secret", "", "HS256 secret (required unless --dev)")
	issuer := fs.String("jwt-issuer", "", "required iss claim, if set")
	audience := fs.String("jwt-audience", "", "required aud claim, if set")
	anon := fs.Bool("allow-anonymous", false, "admit sessions without a token as guests")
	origins := fs.String("allowed-origins", "", "comma-separated origins allowed to open WebSockets and call gRPC-Web")
	locale := fs.String("locale", "en", "language of server texts for connections whose token and Accept-Language name none we have (en, es)")
	brokerName := fs.String("broker", "memory", "broker: memory or redis")
	redisURL := fs.String("redis-url", "redis://127.0.0.1:6379/0", "Redis URL, with --broker redis")
	spread := fs.Duration("shutdown-spread", node.DefaultShutdownSpread, "on SIGTERM, end the sessions evenly over this window (WebSocket 1012, gRPC Unavailable)")
	shutdown := fs.Duration("shutdown-timeout", node.DefaultShutdownTimeout, "bound on a shutdown, counted from SIGTERM; must exceed --shutdown-spread (a second SIGTERM ends it at once)")
	logOpts := addLogFlags(fs)
	pprofAddr := fs.String("pprof-addr", "", "serve net/http/pprof on this address (off by default)")
	adminAddr := fs.String("admin-addr", "", "serve /metrics and net/http/pprof on this address, and /metrics no longer on --http-addr (off by default)")
	proxies := fs.String("trusted-proxies", joinPrefixes(node.DefaultTrustedProxies), "comma-separated networks whose `tertulia bridge` may name the browser's address for the per-IP limit (empty: none)")
	presenceLimit := fs.Int("presence-limit", hub.DefaultPresenceLimit, "announce joins and leaves only while the lobby or a room has at most this many connections")
	sec := addSecurityFlags(fs)
	hist := historyFlags(fs)
	limits := limitFlags(fs)
	configFile := configFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	namespaces, err := configFile()
	if err != nil {
		return err
	}
	trusted, err := parsePrefixes(*proxies)
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if *presenceLimit <= 0 {
		return fmt.Errorf("--presence-limit %d: want a positive number of connections", *presenceLimit)
	}
	log, err := logOpts.logger(stderr)
	if err != nil {
		return err
	}

	cfg := node.Config{
		Dev:             *dev,
		JWT:             auth.Config{Secret: []byte(*secret), Issuer: *issuer, Audience: *audience},
		AllowAnonymous:  *anon,
		AllowedOrigins:  splitList(*origins),
		Locale:          *locale,
		ShutdownSpread:  *spread,
		ShutdownTimeout: *shutdown,
		Logger:          log,
		Static:          staticFS(),
		Metrics:         metrics.New(),
		Hub:             hist.config(),
		Limits:          limits(),
		TrustedProxies:  trusted,
	}
	cfg.Hub.PresenceLimit = *presenceLimit
	cfg.Hub.Namespaces = namespaces
	if err := sec.apply(&cfg, log); err != nil {
		return err
	}
	if *secret == "" {
		if !*dev && !sec.hasKeys() {
			return errors.New("--jwt-secret (or TERTULIA_JWT_SECRET), --jwt-public-key or --jwt-jwks-url is required without --dev")
		}
		if *dev {
			cfg.JWT.Secret = auth.RandomSecret()
			log.Warn("dev mode: generated a random JWT secret; tokens will not survive a restart")
		}
	}
	b, closeBroker, err := openBroker(ctx, *brokerName, *redisURL, *presenceLimit, log, cfg.Metrics)
	if err != nil {
		return err
	}
	// Closed last: Serve returns once every session has left the broker.
	defer closeBroker()
	cfg.Broker = b
	if *adminAddr != "" {
		if cfg.AdminListener, err = net.Listen("tcp", *adminAddr); err != nil {
			return fmt.Errorf("listen admin: %w", err)
		}
		defer cfg.AdminListener.Close()
	}

	n, err := node.New(cfg)
	if err != nil {
		return err
	}
	grpcLis, err := net.Listen("tcp", *grpcAddr)
	if err != nil {
		return fmt.Errorf("listen grpc: %w", err)
	}
	// The keepalives of the HTTP port's connections are set once, on the
	// listener (see bridge.Listen).
	httpLis, err := bridge.Listen(ctx, *httpAddr)
	if err != nil {
		grpcLis.Close()
		return fmt.Errorf("listen http: %w", err)
	}
	ctx, stop := onSignals(ctx, n, log)
	defer stop()
	printWelcome(stdout, httpLis.Addr(), grpcLis.Addr(), *dev, cfg.TLS != nil)
	log.Info("serving", "http", httpLis.Addr().String(), "grpc", grpcLis.Addr().String(), "broker", *brokerName, "dev", *dev)
	if err := startPprof(ctx, *pprofAddr, log); err != nil {
		return err
	}
	return n.Serve(ctx, grpcLis, httpLis)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// printWelcome tells a person where to point a browser, grpcurl and curl.
func printWelcome(w io.Writer, httpAddr, grpcAddr net.Addr, dev, tls bool) {
	h, g := node.LocalAddr(httpAddr), node.LocalAddr(grpcAddr)
	scheme, plain := "http", "-plaintext "
	if tls {
		scheme, plain = "https", ""
	}
	fmt.Fprintf(w, "Tertulia is running.\n")
	fmt.Fprintf(w, "  browser: %s://%s/\n", scheme, h)
	fmt.Fprintf(w, "  grpcurl: grpcurl %s%s list\n", plain, g)
	fmt.Fprintf(w, "           grpcurl %s%s chat.v1.ChatService/GetStats\n", plain, g)
	fmt.Fprintf(w, "  curl:    curl %s://%s/api/v1/websocket/stats\n", scheme, h)
	if dev {
		fmt.Fprintf(w, "           curl -X POST '%s://%s/api/v1/websocket/test-token?username=alice'\n", scheme, h)
	}
}

// parsePrefixes reads a comma-separated list of networks ("10.0.0.0/8") or
// addresses (one address is a network of one); empty is an empty list.
func parsePrefixes(list string) ([]netip.Prefix, error) {
	out := []netip.Prefix{}
	for _, item := range splitList(list) {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			a, aerr := netip.ParseAddr(item)
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a network nor an address", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// joinPrefixes is the comma-separated list parsePrefixes reads.
func joinPrefixes(ps []netip.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}
