package bridge

import (
	"net/http"
	"net/url"
	"strings"
)

// The WebSocket endpoints: anyone the upstream admits, and token holders.
const (
	wsPath     = "/api/v1/ws"
	wsAuthPath = wsPath + "/authenticated"
)

// Subprotocol is the WebSocket subprotocol of Tertulia's JSON frames. A
// browser that sends its token as a "bearer.<jwt>" subprotocol must offer
// this one too: the server echoes it, never the token.
const Subprotocol = "tertulia.v1"

// bearerProtocol prefixes a token sent as a subprotocol.
const bearerProtocol = "bearer."

// upgradeRequest is what admission looks at in a WebSocket upgrade
// request, whichever way it was read (Handlers or Listener).
type upgradeRequest struct {
	path      string
	query     url.Values
	host      string
	origin    string   // the Origin header, "" if none
	protocols []string // the Sec-WebSocket-Protocol headers, as sent
	// acceptLanguage is the Accept-Language header: not for admission, but
	// passed on to the connection for the language of its texts.
	acceptLanguage string
}

// requestOf is r as admission sees it.
func requestOf(r *http.Request) upgradeRequest {
	return upgradeRequest{path: r.URL.Path, query: r.URL.Query(), host: r.Host,
		origin: r.Header.Get("Origin"), protocols: r.Header.Values("Sec-WebSocket-Protocol"),
		acceptLanguage: r.Header.Get("Accept-Language")}
}

// admission is an upgrade let in, and what its connection starts with.
type admission struct {
	requireToken bool   // the authenticated endpoint: no token, no session
	token        string // from the token query parameter, else a bearer.<jwt> subprotocol
	protocol     string // the subprotocol to echo: Subprotocol or ""
	// acceptLanguage is the request's Accept-Language header.
	acceptLanguage string
}

// rejection is an upgrade refused before it happens, with its HTTP answer.
type rejection struct {
	status int
	reason string
}

func (r *rejection) Error() string { return r.reason }

// admit is the one admission rule of WebSocket upgrades: the path must be
// one of the endpoints (404), a browser page must come from an allowed
// origin (403: a page from another site must not ride on the browser's
// cookies or network position, which is cross-site WebSocket hijacking);
// the token comes from the query, else from a bearer.<jwt> subprotocol;
// a client that offers subprotocols must offer Subprotocol (400), which is
// echoed. Whether the token is good is the
// upstream's to decide, once the connection is up.
func (b *Bridge) admit(r upgradeRequest) (admission, *rejection) {
	a := admission{acceptLanguage: r.acceptLanguage}
	switch r.path {
	case wsPath:
	case wsAuthPath:
		a.requireToken = true
	default:
		return a, &rejection{http.StatusNotFound, "not found"}
	}
	if !b.cfg.Origins.allow(r.origin, r.host) {
		return a, &rejection{http.StatusForbidden, "origin not allowed"}
	}
	a.token = r.query.Get("token")
	for _, h := range r.protocols {
		t, ours := offered(h)
		if a.token == "" {
			a.token = t
		}
		if ours {
			a.protocol = Subprotocol
		}
	}
	if len(r.protocols) > 0 && a.protocol == "" {
		// A client that asks for subprotocols must speak ours: a browser
		// would fail a connection that echoes none of them anyway.
		return a, &rejection{http.StatusBadRequest, "subprotocol " + Subprotocol + " required"}
	}
	return a, nil
}

// offered reads a Sec-WebSocket-Protocol header: the token of a
// bearer.<jwt> subprotocol, if any, and whether Subprotocol is offered.
func offered(header string) (token string, ours bool) {
	for p := range strings.SplitSeq(header, ",") {
		p = strings.TrimSpace(p)
		if t, ok := strings.CutPrefix(p, bearerProtocol); ok && t != "" && token == "" {
			token = t
		}
		ours = ours || p == Subprotocol
	}
	return token, ours
}
