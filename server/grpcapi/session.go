package grpcapi

import (
	"context"
	"sync"
	"time"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
)

// FrameSink is a transport's side of a Session: where the core's frames go.
type FrameSink interface {
	// WireFormat is how frames are encoded for this sink. Sinks naming the
	// same format share the bytes of each event.
	WireFormat() WireFormat
	// WriteFrames sends encoded frames, in order, in as few writes as it
	// can. It is called from one goroutine at a time and may block.
	WriteFrames(frames [][]byte) error
	// Disconnect tells the transport that the core has ended the session,
	// and why. It is called at most once and must not block on the client.
	// A WriteFrames call may still be under way (Disconnect should make it
	// give up); none starts after it.
	Disconnect(d hub.Disconnect)
}

// WireFormat is an encoding of ServerFrames.
type WireFormat struct {
	// Name identifies the format; sinks naming the same format share the
	// bytes of each event.
	Name   string
	Encode func(*chatv1.ServerFrame) ([]byte, error)
}

// Session is one chat session, as a transport runs it. This is the
// session contract, the same for every transport:
//
//   - open: the transport adapter (the gRPC Connect stream in connect.go,
//     the WebSocket bridge in process) admits its client, then calls
//     ChatService.Open with the client's identity and a FrameSink.
//   - client -> core: the adapter decodes each client frame into a
//     chatv1.ClientFrame and hands it to Handle, from one goroutine, in
//     the order the client sent them.
//   - core -> client: the core encodes each event once per WireFormat and
//     hands the bytes to the sink's WriteFrames, in order, from one
//     goroutine at a time.
//   - the core ends it: on a slow consumer, a shutdown, a write error, or
//     after Drain, the sink's Disconnect gets a typed hub.Disconnect, once;
//     the adapter maps its code onto its own close (a gRPC status, a
//     WebSocket close code) with a table of its own.
//   - the client ends it: the adapter calls Drain if the client only
//     half-closed and still wants its answers; then, whoever ended the
//     session, Close, always.
//
// Drain and Close may be called from any goroutine, Close last.
type Session struct {
	ctx  context.Context
	sess *hub.Session
	sink FrameSink
	enc  hub.Encoder

	// The channel Drain waits on is made only when Drain is called: most
	// sessions are never drained, and an idle one need not hold it.
	mu      sync.Mutex    // protects the fields below
	closing bool          // the core is ending the session
	ended   bool          // the sink's Disconnect has returned
	drained chan struct{} // made by Drain, closed once ended
}

// Open starts a chat session for who, whose frames go to sink. Once it
// returns, the client's welcome is on its way. Otherwise the error is the
// gRPC status Connect ends the stream with (see openStatus): Unavailable
// while the server shuts down or if the cluster could not take the
// session, PermissionDenied for a banned user, ResourceExhausted over a
// connection limit; sink is not called then. Every transport maps that
// status onto its own refusal, so that a client is told the same on each.
func (s *ChatService) Open(ctx context.Context, who hub.Identity, sink FrameSink) (*Session, error) {
	sess := &Session{ctx: ctx, sink: sink, enc: s.encoderFor(sink.WireFormat())}
	hs, err := s.hub.Open(withPeerIP(ctx), who, (*sessionTransport)(sess))
	if err != nil {
		return nil, s.openStatus(ctx, who, err)
	}
	sess.sess = hs
	return sess, nil
}

// Handle carries out one client frame. A frame the core refuses is answered
// with an error frame; the session goes on.
func (s *Session) Handle(f *chatv1.ClientFrame) {
	s.sess.Handle(s.ctx, CommandFromFrame(f))
}

// Refuse answers a client frame the transport could not map, in turn with
// the answers to the frames handed to Handle before it.
func (s *Session) Refuse(id string, err *hub.Error) {
	s.sess.Refuse(id, err)
}

// drainTimeout bounds how long Drain waits for the queued frames to be
// written, and Close for the presence updates of a session's end.
const drainTimeout = 5 * time.Second

// Drain ends the session as a client that half-closed asks: what is queued
// for it is written first, then the sink's Disconnect gets
// hub.DisconnectDone. It returns once that is done, ctx is done or
// drainTimeout has passed.
func (s *Session) Drain(ctx context.Context) {
	s.sess.Drain()
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	if s.drained == nil {
		s.drained = make(chan struct{})
	}
	drained := s.drained
	s.mu.Unlock()
	select {
	case <-drained:
	case <-ctx.Done():
	case <-time.After(drainTimeout):
	}
}

// Close takes the session out of the core: its rooms, and the user's
// presence across the cluster. The transport calls it once the connection
// is over, whoever ended it; it is safe to call more than once.
func (s *Session) Close() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), drainTimeout)
	defer cancel()
	s.sess.Close(ctx)
}

// sessionTransport is a Session as the hub sees it: its hub.Transport.
type sessionTransport Session

func (t *sessionTransport) Encoder() hub.Encoder        { return t.enc }
func (t *sessionTransport) Write(frames [][]byte) error { return t.sink.WriteFrames(frames) }
func (t *sessionTransport) Close(d hub.Disconnect) {
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		return
	}
	t.closing = true
	t.mu.Unlock()
	t.sink.Disconnect(d)
	t.mu.Lock()
	t.ended = true
	if t.drained != nil {
		close(t.drained)
	}
	t.mu.Unlock()
}

// frameEncoder is a hub.Encoder for one wire format.
type frameEncoder struct {
	encode func(*chatv1.ServerFrame) ([]byte, error)
}

func (e *frameEncoder) Encode(ev *hub.Event) ([]byte, error) { return e.encode(FrameFromEvent(ev)) }
