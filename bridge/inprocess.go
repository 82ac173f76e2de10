package bridge

import (
	"context"

	"github.com/gobwas/ws"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
		// The same refusal as over gRPC, closed as the remote bridge
		// closes for it.
		c.Close(closeForStatus(err))
		done(err)
		return
	}
	c.Serve(sess.Handle, func(fe *FrameError) { sess.Refuse(echoedID(fe.ID), fe.Refusal()) },
		func(err error) { sess.Close(); done(err) })
}

// open opens the session of c, or returns the gRPC status of its refusal,
// the one a Connect stream would end with: the token's, as StreamAuth
// refuses it, or the core's (see grpcapi.ChatService.Open).
func (u InProcess) open(ctx context.Context, token string, c *Conn) (*grpcapi.Session, error) {
	who, err := u.Gate.Session(token)
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	who.AcceptLanguage = c.acceptLanguage
	return u.Chat.Open(ctx, who, socketSink{c})
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
