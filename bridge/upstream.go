package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gobwas/ws"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/grpcapi"
)

// Upstream runs the chat.v1 Connect session of one browser connection.
type Upstream interface {
	// Run runs a session for a browser presenting token ("" for a guest,
	// where guests are allowed) until either side ends it. It reads client
	// frames with c.Recv or c.Serve and sends server frames with
	// c.WriteFrames, and returns how the session ended: nil or a read error
	// of c when the browser ended it, a gRPC status when the server did (Unauthenticated
	// for a token refused before any chat traffic).
	Run(ctx context.Context, token string, c *Conn) error
}

// InProcess attaches sessions to a ChatService in this process: no network
// hop, and each event is encoded to JSON once for every browser session.
type InProcess struct {
	Chat *grpcapi.ChatService
	// Gate admits sessions exactly as the gRPC server does.
	Gate auth.Gate
}

var _ Upstream = InProcess{}

// Run implements Upstream.
func (u InProcess) Run(ctx context.Context, token string, c *Conn) error {
	// Verifying the token, attaching and ending the session run on the
	// bridge's workers, as the frames do: this goroutine, which lasts as
	// long as the connection, keeps a small stack (see Conn.Serve).
	var in *grpcapi.InlineSession
	err := c.b.workers.do(func() error {
		who, err := u.Gate.Session(token)
		if err != nil {
			return status.Error(codes.Unauthenticated, err.Error())
		}
		who.AcceptLanguage = c.acceptLanguage
		in, err = u.Chat.Open(&stream{ctx: auth.NewContext(ctx, who), c: c})
		return err
	})
	if err != nil {
		return err
	}
	served := c.Serve(in.Handle, func(fe *FrameError) { in.Refuse(fe.ID, fe.Refusal()) })
	return c.b.workers.do(func() error { return in.End(served) })
}

// stream is a browser connection seen as the server side of a Connect
// stream. It takes frames already encoded as JSON (grpcapi.EncodedStream).
type stream struct {
	ctx context.Context
	c   *Conn
}

var (
	_ chatv1.ChatService_ConnectServer = (*stream)(nil)
	_ grpcapi.EncodedStream            = (*stream)(nil)
	_ grpcapi.AbortableStream          = (*stream)(nil)
)

func (s *stream) Context() context.Context           { return s.ctx }
func (s *stream) Recv() (*chatv1.ClientFrame, error) { return s.c.Recv() }
func (s *stream) Send(f *chatv1.ServerFrame) error   { return s.c.writeFrame(f) }
func (s *stream) WriteFrames(frames [][]byte) error  { return s.c.WriteFrames(frames) }
func (s *stream) WireFormat() grpcapi.WireFormat     { return jsonFormat() }
func (s *stream) Abort(err error)                    { s.c.Close(closeFor(err)) }
func (s *stream) SetHeader(metadata.MD) error        { return nil }
func (s *stream) SendHeader(metadata.MD) error       { return nil }
func (s *stream) SetTrailer(metadata.MD)             {}
func (s *stream) SendMsg(m any) error {
	f, ok := m.(*chatv1.ServerFrame)
	if !ok {
		return fmt.Errorf("bridge stream: cannot send %T", m)
	}
	return s.Send(f)
}

func (s *stream) RecvMsg(m any) error {
	dst, ok := m.(*chatv1.ClientFrame)
	if !ok {
		return fmt.Errorf("bridge stream: cannot receive into %T", m)
	}
	f, err := s.Recv()
	if err != nil {
		return err
	}
	proto.Reset(dst)
	proto.Merge(dst, f)
	return nil
}

// jsonFormat is the bridge's wire format; every browser session names the
// same one, so the hub shares the bytes of each event between them.
func jsonFormat() grpcapi.WireFormat { return grpcapi.WireFormat{Name: "json", Encode: EncodeFrame} }

// Remote runs each session as a real Connect stream to a core node, with
// the browser's token as "authorization: Bearer" metadata.
type Remote struct {
	Client chatv1.ChatServiceClient
}

var _ Upstream = Remote{}

// Run implements Upstream.
func (u Remote) Run(ctx context.Context, token string, c *Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	if c.acceptLanguage != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "accept-language", c.acceptLanguage)
	}
	st, err := u.Client.Connect(ctx)
	if err != nil {
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
func forward(st grpc.BidiStreamingClient[chatv1.ClientFrame, chatv1.ServerFrame], c *Conn, held *refusals) error {
	for {
		f, err := st.Recv()
		if errors.Is(err, io.EOF) {
			c.Close(ws.StatusNormalClosure, "")
			return nil
		}
		if err != nil {
			c.Close(closeFor(err))
			return err
		}
		if r := held.swap(f, c.b.now()); r != nil {
			f = r
		} else if f.GetId() == held.barrier {
			continue
		}
		if err := c.writeFrame(f); err != nil {
			// The browser did not take a frame within WriteTimeout (or is
			// gone): it is a slow consumer here as in the core.
			c.Close(ws.StatusPolicyViolation, "slow consumer: write timed out")
			return err
		}
	}
}
