package bridge

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Origins decides which pages may open a WebSocket (and, in the node, call
// gRPC-Web): a page of the same origin always may; a cross-origin page only
// if its origin is listed, or, in Dev, if it is served from this machine.
// A request without an Origin header does not come from a browser page and
// is allowed. The zero value allows same-origin pages only.
type Origins struct {
	// Allowed lists origins such as "https://chat.example.com"; "*" allows any.
	Allowed []string
	// Dev allows http(s)://localhost, 127.0.0.1 and [::1] on any port.
	Dev bool
}

// Allow reports whether r may open a WebSocket.
func (o Origins) Allow(r *http.Request) bool { return o.allow(r.Header.Get("Origin"), r.Host) }

// allow reports whether a page from origin may open a WebSocket to host.
func (o Origins) allow(origin, host string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	return o.AllowOrigin(origin)
}

// AllowOrigin reports whether a cross-origin page from origin is allowed.
func (o Origins) AllowOrigin(origin string) bool {
	for _, a := range o.Allowed {
		if a == "*" || strings.EqualFold(strings.TrimRight(a, "/"), origin) {
			return true
		}
	}
	if !o.Dev {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	switch h := u.Hostname(); h {
	case "localhost":
		return true
	default:
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
}
