package httpedge

import (
	"net/http"

	"github.com/rs/cors"
)

// withCORS lets pages of the allowed origins call REST, as they may open a
// WebSocket or call gRPC-Web (the same rule decides all three): their
// requests get Access-Control-Allow-Origin, and their preflights (OPTIONS
// with Access-Control-Request-Method) are answered here, 204 with the
// methods and headers REST takes. A preflight from any other origin is
// refused with 403 and no grant, so the browser blocks the call and the
// page's author sees why. Tokens travel in the Authorization header, never
// in cookies: no credentials are allowed. A nil allow grants no origin.
func withCORS(allow func(origin string) bool, next http.Handler) http.Handler {
	if allow == nil {
		allow = func(string) bool { return false }
	}
	c := cors.New(cors.Options{
		AllowOriginFunc: allow,
		AllowedMethods:  []string{http.MethodGet, http.MethodPost, http.MethodDelete},
		AllowedHeaders:  []string{"Authorization", "Content-Type", "Accept-Language"},
		MaxAge:          600, // seconds: a page's calls do not each pay a preflight
	})
	granted := c.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" && !allow(origin) {
			w.Header().Add("Vary", "Origin")
			writeJSON(w, http.StatusForbidden, map[string]any{"code": 7, "message": "origin not allowed"})
			return
		}
		granted.ServeHTTP(w, r)
	})
}
