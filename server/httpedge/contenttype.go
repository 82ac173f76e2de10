package httpedge

import (
	"mime"
	"net/http"
)

// requireJSON refuses a POST whose body is declared as anything but JSON
// with 415: the gateway would otherwise decode any body as JSON, whatever
// it claims to be. A body with no Content-Type is taken as JSON, and a POST
// with no body (its fields in the query, as the seed allowed) needs none.
func requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.ContentLength != 0 && !isJSON(r.Header.Get("Content-Type")) {
			writeJSON(w, http.StatusUnsupportedMediaType, map[string]any{
				"code": 3, "message": "request body must be JSON: send Content-Type: application/json"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isJSON reports whether a Content-Type names JSON: application/json, or
// any application/*+json; an absent one counts as JSON.
func isJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || len(mt) > len("application/+json") &&
		mt[:len("application/")] == "application/" && mt[len(mt)-len("+json"):] == "+json"
}
