package httpedge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// readBody reads a REST request's body whole before anything else sees it,
// within timeout of its head and within hub.MaxFrameBytes: 408 for a body
// that does not come in time, 413 for one over the size, each with a JSON
// answer. Without it a client, before it is even authenticated, could
// send a body a byte at a time and hold a goroutine and up to 64 KiB for
// as long as it liked: the HTTP server bounds only the head's time.
func readBody(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		if r.ContentLength > hub.MaxFrameBytes {
			tooLarge(w)
			return
		}
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Now().Add(timeout))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, hub.MaxFrameBytes))
		if err != nil {
			// The connection is closed after the answer: what is left of
			// the body is not waited for.
			w.Header().Set("Connection", "close")
			var tooBig *http.MaxBytesError
			switch {
			case errors.As(err, &tooBig):
				tooLarge(w)
			case isTimeout(err):
				writeJSON(w, http.StatusRequestTimeout, map[string]any{
					"code": 4, "message": fmt.Sprintf("request body not received within %v", timeout)})
			}
			return // else the client went away
		}
		// The server's own deadline, none, again: a read left armed would
		// cancel the request's context when it fires.
		rc.SetReadDeadline(time.Time{})
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		next.ServeHTTP(w, r)
	})
}

func tooLarge(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{
		"code": 8, "message": fmt.Sprintf("request body larger than %d bytes", hub.MaxFrameBytes)})
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// BodyWithin gives r's body d from now to come whole, for a handler that
// reads the body itself (gRPC-Web): the read deadline is lifted once the
// body has been read to its end, so that the answer may then take as long
// as it needs, and a body that does not come in time fails the handler's
// read. Without it, a client could hold the request open for ever by
// sending its body a byte at a time.
func BodyWithin(w http.ResponseWriter, r *http.Request, d time.Duration) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(d)) != nil {
		return
	}
	r.Body = &liftAtEOF{ReadCloser: r.Body, rc: rc}
}

// liftAtEOF is a body whose read deadline is lifted when it ends.
type liftAtEOF struct {
	io.ReadCloser
	rc     *http.ResponseController
	lifted bool
}

func (b *liftAtEOF) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.lifted {
		b.lifted = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
