package bridge

import (
	"context"
	"errors"

	"github.com/gobwas/ws"

	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/grpcapi"
	"github.com/tertulia/tertulia/server/hub"
)

// InProcess opens sessions on a ChatService in this process through its
// session contract (grpcapi.Session): no network hop, and each event is
// encoded to JSON once for every browser session, never as protobuf.
type InProcess struct {
	Chat *grpcapi.ChatService
	// Gate admits sessions exactly as the gRPC server does.
	Gate auth.Gate
}

var _ Upstream = InProcess{}

// Start implements Upstream. It verifies the token and opens the session
// on the calling goroutine (one of the bridge's workers), and leaves the
// waiting for frames to c.Serve.
func (u InProcess) Start(ctx context.Context, token string, c *Conn, done func(error)) {
	sess, err := u.open(ctx, token, c)
	if err != nil {
		done(err)
		return
	}
	c.Serve(sess.Handle, func(fe *FrameError) { sess.Refuse(echoedID(fe.ID), fe.Refusal()) },
		func(err error) { sess.Close(); done(err) })
}

// open opens the session of c, or closes c with the code that says why it
// could not.
func (u InProcess) open(ctx context.Context, token string, c *Conn) (*grpcapi.Session, error) {
	who, err := u.Gate.Session(token)
	if err != nil {
		c.Close(ws.StatusPolicyViolation, err.Error())
		return nil, err
	}
	who.AcceptLanguage = c.acceptLanguage
	sess, err := u.Chat.Open(ctx, who, socketSink{c})
	if reason, ok := tooManyConns(err); ok {
		c.Close(ws.StatusPolicyViolation, reason)
		return nil, err
	}
	var banned *hub.BannedError
	if errors.As(err, &banned) {
		c.Close(CloseModerated, banned.Error())
		return nil, err
	}
	if err != nil {
		// Whether the node is shutting down or cannot reach its
		// cluster, the browser had better try again after a random wait,
		// elsewhere: 1012, as the remote bridge closes for the
		// Unavailable status Connect answers in both cases.
		c.Close(StatusServiceRestart, ReasonServiceRestart)
		return nil, err
	}
	return sess, nil
}

// socketSink is a browser connection as the FrameSink of its session.
type socketSink struct{ c *Conn }

var _ grpcapi.FrameSink = socketSink{}

// jsonFormat is the bridge's wire format; every browser session names the
// same one, so the core shares the bytes of each event between them.
var jsonFormat = grpcapi.WireFormat{Name: "json", Encode: EncodeFrame}

func (s socketSink) WireFormat() grpcapi.WireFormat    { return jsonFormat }
func (s socketSink) WriteFrames(frames [][]byte) error { return s.c.WriteFrames(frames) }
func (s socketSink) Disconnect(d hub.Disconnect)       { s.c.Close(closeForDisconnect(d)) }

// closeShutdown is the reason of a close for a server going away.
const closeShutdown = "server shutting down"

// disconnectCloses maps each reason the core ends a session for onto the
// close code the browser gets, with the core's reason. Reasons missing here
// close with 1011.
var disconnectCloses = map[hub.DisconnectCode]ws.StatusCode{
	hub.DisconnectSlow:       ws.StatusPolicyViolation, // the client read too slowly
	hub.DisconnectShutdown:   StatusServiceRestart,     // as over gRPC: Unavailable
	hub.DisconnectRestart:    StatusServiceRestart,
	hub.DisconnectWriteError: ws.StatusInternalServerError,
	hub.DisconnectDone:       ws.StatusNormalClosure,
	hub.DisconnectFlood:      ws.StatusPolicyViolation, // kept sending over its rate limits
	hub.DisconnectExpired:    CloseTokenExpired,
	hub.DisconnectKicked:     CloseModerated,
	hub.DisconnectBanned:     CloseModerated,
}

// closeForDisconnect is the close code and reason for d.
func closeForDisconnect(d hub.Disconnect) (ws.StatusCode, string) {
	code, ok := disconnectCloses[d.Code]
	if !ok {
		code = ws.StatusInternalServerError
	}
	return code, d.Reason
}
