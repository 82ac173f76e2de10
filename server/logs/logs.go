// Package logs builds Tertulia's structured loggers (log/slog, text or
// JSON) and carries per-request attributes in contexts: a record logged with
// a context (InfoContext and the like) gets the request id and whatever else
// With put there, so the code that logs need not pass them along.
//
// What is logged at the default level (info) never holds a token or a
// message body: records name connections, users and rooms by id.
package logs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// New returns a logger writing to w in format ("text" or "json") at level
// ("debug", "info", "warn" or "error"), which adds the attributes of each
// record's context (see With).
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return slog.New(Handler(h)), nil
}

// Handler wraps h so that each record gets the attributes of its context.
func Handler(h slog.Handler) slog.Handler {
	if _, ok := h.(contextHandler); ok {
		return h
	}
	return contextHandler{h}
}

type attrsKey struct{}

// With returns a context whose log records carry attrs, after those ctx
// already carries.
func With(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(attrsKey{}).([]slog.Attr)
	all := make([]slog.Attr, 0, len(prev)+len(attrs))
	return context.WithValue(ctx, attrsKey{}, append(append(all, prev...), attrs...))
}

// contextHandler adds the attributes of a record's context.
type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, _ := ctx.Value(attrsKey{}).([]slog.Attr); len(attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
