package logs_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/tertulia/tertulia/server/logs"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		format, level, want, err string
	}{
		{"text", "info", "level=INFO msg=hello request_id=r1", ""},
		{"json", "info", `"msg":"hello","request_id":"r1"`, ""},
		{"json", "warn", "", ""}, // info is below the level
		{"yaml", "info", "", "--log-format"},
		{"text", "loud", "", "--log-level"},
	} {
		t.Run(tc.format+"/"+tc.level, func(t *testing.T) {
			var b strings.Builder
			log, err := logs.New(&b, tc.format, tc.level)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.InfoContext(logs.WithRequestID(context.Background(), "r1"), "hello")
			if got := b.String(); !strings.Contains(got, tc.want) || (tc.want == "" && got != "") {
				t.Errorf("logged %q, want %q", got, tc.want)
			}
		})
	}
}

func TestHTTPRequestID(t *testing.T) {
	var b strings.Builder
	log := slog.New(logs.Handler(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h := logs.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.InfoContext(r.Context(), "inside")
	}), log)
	for _, tc := range []struct {
		given string
		kept  bool
	}{
		{"req-42.a", true},
		{"", false},
		{"evil\" msg=forged", false},
		{strings.Repeat("x", 65), false},
	} {
		b.Reset()
		r := httptest.NewRequest(http.MethodGet, "/api/v1/ws?token=secret-token", nil)
		if tc.given != "" {
			r.Header.Set(logs.RequestIDHeader, tc.given)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		id := w.Header().Get(logs.RequestIDHeader)
		if id == "" || (id == tc.given) != tc.kept {
			t.Errorf("X-Request-Id %q answered with %q, want it kept: %v", tc.given, id, tc.kept)
		}
		if got := b.String(); strings.Count(got, "request_id="+id) != 2 || strings.Contains(got, "secret-token") {
			t.Errorf("logged %q: want request_id=%s on both records and no query", got, id)
		}
	}
}
