package httpedge

import (
	"net/http"
	"unicode/utf8"
)

// requireUTF8 refuses with 400 a request whose path or query, once
// unescaped, is not UTF-8 ("/rooms/%ff/members"): they become the string
// fields of a gRPC request, which protobuf will not carry, and the gateway
// would answer 500 for the client's mistake.
func requireUTF8(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !utf8.ValidString(r.URL.Path) || !validQuery(r) {
			writeJSON(w, http.StatusBadRequest, map[string]any{
				"code": 3, "message": "the path and query must be UTF-8 once unescaped"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// validQuery reports whether every key and value of r's query is UTF-8.
func validQuery(r *http.Request) bool {
	for k, vs := range r.URL.Query() {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}
