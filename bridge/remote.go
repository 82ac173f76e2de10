package bridge

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	"github.com/gobwas/ws"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/grpcapi"
)

// Remote runs each session as a real Connect stream to a core node, with
// the browser's token as "authorization: Bearer" metadata.
type Remote struct {
	Client chatv1.ChatServiceClient
}

var _ Upstream = Remote{}

// Start implements Upstream. The session runs on a goroutine of its own,
// which reads the browser's frames while the stream's are forwarded.
func (u Remote) Start(ctx context.Context, token string, c *Conn, done func(error)) {
	go func() {
		err := u.run(ctx, token, c)
		c.Close(closeForStatus(err))
		done(err)
	}()
}

func (u Remote) run(ctx context.Context, token string, c *Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	if c.acceptLanguage != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "accept-language", c.acceptLanguage)
	}
	// The node counts the session against the browser's address, not this
	// bridge's, if it trusts this bridge (node.Config.TrustedProxies).
	if host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String()); err == nil {
		ctx = metadata.AppendToOutgoingContext(ctx, grpcapi.ClientIPMetadata, host)
	}
	st, err := u.Client.Connect(ctx)
	if err != nil {
		// Connect fails only where the stream could not be opened: the core
		// is out of reach (a refusal of the core's comes with the first
		// Recv, and the core logs what it failed itself). That is the
		// operator's business, with why; the browser is told 1012.
		if ctx.Err() == nil {
			c.b.log.Warn("core unreachable: session not started", "remote", c.nc.RemoteAddr().String(), "err", err)
		}
		return err
	}
	// The first frame is the welcome, or the refusal of the token: nothing
	// reaches the browser before the core has admitted it.
	first, err := st.Recv()
	if err != nil {
		return err
	}
	if err := c.writeFrame(first); err != nil {
		return err
	}
	down := make(chan error, 1)
	held := newRefusals()
	go func() { down <- forward(st, c, held) }()
	refuse := func(fe *FrameError) { st.Send(held.hold(fe)) } // a failed Send shows on the next one

	for {
		f, err := c.recv(refuse)
		if err != nil {
			st.CloseSend()
			// The core ends the stream once it has seen the end of ours; if
			// the core ended first, its status is the better answer.
			var derr error
			select {
			case derr = <-down:
			case <-time.After(c.b.cfg.CloseTimeout):
				cancel()
				<-down
			}
			if derr != nil && status.Code(derr) != codes.Canceled {
				return derr
			}
			return err
		}
		if err := st.Send(f); err != nil {
			// The core ended the stream; Recv on it says why.
			return <-down
		}
	}
}

// forward copies the core's frames to the browser until the stream ends,
// then closes the browser connection with the fitting code so that the
// reader stops, and returns the stream's status.
//
// The stream is read on a goroutine of its own, a few frames ahead of the
// browser: the frames that arrive while a write is under way go out
// together in the next one, as the in-process writer sends what its
// session queued (and a tertulia.v1 browser gets them in one message).
func forward(st grpc.BidiStreamingClient[chatv1.ClientFrame, chatv1.ServerFrame], c *Conn, held *refusals) error {
	frames := make(chan *chatv1.ServerFrame, forwardAhead)
	ended := make(chan error, 1) // why the stream ended, once frames is closed
	go func() {
		defer close(frames)
		for {
			f, err := st.Recv()
			if err != nil {
				ended <- err
				return
			}
			frames <- f
		}
	}()
	// abandon waits, once the browser is gone, for the stream to end: the
	// core ends it once run has closed its side, or run cancels it.
	abandon := func() {
		for range frames {
		}
	}
	batch := make([][]byte, 0, forwardAhead)
	for f := range frames {
		batch = batch[:0]
	queued: // f, and the frames that came in behind it
		for {
			if f = held.forwarded(f, c.b.now()); f != nil {
				b, err := EncodeFrame(f)
				if err != nil {
					c.Close(ws.StatusInternalServerError, "internal error")
					abandon()
					return err
				}
				batch = append(batch, b)
			}
			if len(batch) == forwardAhead {
				break
			}
			select {
			case next, ok := <-frames:
				if !ok {
					break queued
				}
				f = next
			default:
				break queued
			}
		}
		if len(batch) == 0 {
			continue
		}
		if err := c.WriteFrames(batch); err != nil {
			// The browser did not take a frame within WriteTimeout (or is
			// gone): it is a slow consumer here as in the core.
			c.Close(ws.StatusPolicyViolation, "slow consumer: write timed out")
			abandon()
			return err
		}
	}
	if err := <-ended; !errors.Is(err, io.EOF) {
		c.Close(closeForStatus(err))
		return err
	}
	c.Close(ws.StatusNormalClosure, "")
	return nil
}

// forwardAhead bounds the core's frames read ahead of a browser that is
// being written to.
const forwardAhead = 64

// closeForStatus maps how a remote session ended (nil, a read error of the
// browser's connection, or the core's gRPC status) onto a WebSocket close
// code and reason.
func closeForStatus(err error) (ws.StatusCode, string) {
	if sessionOver(err) {
		return ws.StatusNormalClosure, ""
	}
	st, ok := status.FromError(err)
	if !ok {
		return ws.StatusInternalServerError, "internal error"
	}
	if code, ok := reasonCloses[chatv1.ReasonOf(err)]; ok {
		return code, st.Message()
	}
	switch st.Code() {
	case codes.Unauthenticated, codes.PermissionDenied:
		return ws.StatusPolicyViolation, st.Message()
	case codes.ResourceExhausted:
		// The core's slow-consumer disconnect: the client read too slowly.
		return ws.StatusPolicyViolation, st.Message()
	case codes.Unavailable:
		// The node is restarting (or cannot reach its cluster): the
		// browser should come back after a random wait. The reason is the
		// one of a restart, whatever the status says: the browser acts on
		// it alike, and a transport error's text names internal addresses.
		return StatusServiceRestart, ReasonServiceRestart
	case codes.Canceled:
		return ws.StatusGoingAway, closeShutdown
	default:
		// A status the node does not send for a session (Internal,
		// Unknown…) comes from the gRPC client itself: its text is not
		// for the browser.
		return ws.StatusInternalServerError, "internal error"
	}
}
