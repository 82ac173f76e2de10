package grpcapi

import (
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/auth"
	"github.com/tertulia/tertulia/server/hub"
)

// Connect implements chat.v1.ChatService: it runs one chat session over the
// stream until the client or the server ends it. The caller's identity must
// be in the stream's context (see StreamAuth).
func (s *ChatService) Connect(stream chatv1.ChatService_ConnectServer) error {
	ctx := stream.Context()
	who, ok := auth.FromContext(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "authentication required")
	}
	if who.AcceptLanguage == "" {
		who.AcceptLanguage = acceptLanguage(ctx)
	}
	sink := &streamSink{stream: stream, ended: make(chan struct{})}
	sess, err := s.Open(ctx, who, sink)
	if err != nil {
		return err
	}
	defer sess.Close()

	recvErr := make(chan error, 1)
	go func() {
		for {
			f, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			sess.Handle(f)
		}
	}()
	select {
	case <-sink.ended:
		return sink.status()
	case err := <-recvErr:
		select {
		case <-sink.ended:
			if sink.reason.Code != hub.DisconnectDone {
				return sink.status()
			}
		default:
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		// The client half-closed: it still gets the answers to its frames.
		sess.Drain(ctx)
		return nil
	}
}

// protoFormat is the wire format of gRPC streams.
var protoFormat = WireFormat{Name: "proto", Encode: func(f *chatv1.ServerFrame) ([]byte, error) { return proto.Marshal(f) }}

// streamSink is a Connect stream as the FrameSink of its session.
type streamSink struct {
	stream chatv1.ChatService_ConnectServer

	// frame carries each frame to the codec. It is reused: WriteFrames is
	// called by one goroutine at a time, and SendMsg is done with it on
	// return (the codec hands grpc-go the frame's bytes, not the frame).
	frame encodedFrame

	once   sync.Once
	ended  chan struct{} // closed by Disconnect
	reason hub.Disconnect
}

func (t *streamSink) WireFormat() WireFormat { return protoFormat }

func (t *streamSink) WriteFrames(frames [][]byte) error {
	// grpc-go's transport coalesces consecutive messages into one socket
	// write, so a batch costs one syscall here too.
	defer func() { t.frame.b = nil }() // let the shared bytes go
	for _, b := range frames {
		t.frame.b = b
		if err := t.stream.SendMsg(&t.frame); err != nil {
			return err
		}
	}
	return nil
}

// Disconnect records why the core ended the session; Connect returns its
// status, which ends the stream.
func (t *streamSink) Disconnect(d hub.Disconnect) {
	t.once.Do(func() {
		t.reason = d
		close(t.ended)
	})
}

// status is what Connect returns once the core has ended the session.
func (t *streamSink) status() error { return statusFromDisconnect(t.reason) }

// Keepalive of gRPC connections, the same on both ends (the node's server,
// the remote bridge's client): a ping after KeepaliveTime of silence,
// answered within KeepaliveTimeout; a client may ping at most every
// KeepaliveMinTime.
const (
	KeepaliveTime    = 30 * time.Second
	KeepaliveTimeout = 10 * time.Second
	KeepaliveMinTime = 10 * time.Second
)
