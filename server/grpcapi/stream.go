package grpcapi

import (
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
)

// WireFormat is an encoding of ServerFrames other than protobuf.
type WireFormat struct {
	// Name identifies the format; streams naming the same format share the
	// bytes of each event.
	Name   string
	Encode func(*chatv1.ServerFrame) ([]byte, error)
}

// EncodedStream is implemented by in-process Connect streams (the WebSocket
// bridge) that take frames already encoded in their own wire format, so that
// an event is encoded once for all of them and never as protobuf on the way.
type EncodedStream interface {
	WireFormat() WireFormat
	// WriteFrames sends frames of that format, in order, in as few writes as
	// it can. It is called from one goroutine at a time.
	WriteFrames(frames [][]byte) error
}

// AbortableStream is implemented by in-process streams that read their
// client's frames themselves (see ChatService.Open) and so must be told when
// the hub ends the session. Abort is called once, then; err is the status
// InlineSession.End will return.
type AbortableStream interface {
	Abort(err error)
}

// frameEncoder is a hub.Encoder for one wire format.
type frameEncoder struct {
	encode func(*chatv1.ServerFrame) ([]byte, error)
}

func (e *frameEncoder) Encode(ev *hub.Event) ([]byte, error) { return e.encode(FrameFromEvent(ev)) }

var protoEncoder = &frameEncoder{encode: func(f *chatv1.ServerFrame) ([]byte, error) { return proto.Marshal(f) }}

// streamTransport is a Connect stream seen as a hub.Transport.
type streamTransport struct {
	stream  grpc.ServerStream
	enc     hub.Encoder
	encoded EncodedStream // nil for real gRPC streams

	// frame carries each frame to the codec. It is reused: Write is called
	// by one goroutine at a time, and SendMsg is done with it on return
	// (the codec hands grpc-go the frame's bytes, not the frame).
	frame encodedFrame

	once   sync.Once
	done   chan struct{} // closed by Close
	reason hub.Disconnect
}

func (t *streamTransport) Encoder() hub.Encoder { return t.enc }

func (t *streamTransport) Write(frames [][]byte) error {
	if t.encoded != nil {
		return t.encoded.WriteFrames(frames)
	}
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

func (t *streamTransport) Close(d hub.Disconnect) {
	t.once.Do(func() {
		t.reason = d
		close(t.done)
		if a, ok := t.stream.(AbortableStream); ok && d.Code != hub.DisconnectDone {
			a.Abort(t.status())
		}
	})
}

// status is what Connect returns once the hub has closed the session.
func (t *streamTransport) status() error {
	switch t.reason.Code {
	case hub.DisconnectSlow:
		return status.Error(codes.ResourceExhausted, t.reason.Reason)
	case hub.DisconnectDone:
		return nil
	case hub.DisconnectShutdown:
		return status.Error(codes.Unavailable, t.reason.Reason)
	case hub.DisconnectExpired, hub.DisconnectKicked, hub.DisconnectBanned:
		return moderationStatus(t.reason)
	default:
		return status.Error(codes.Aborted, t.reason.Reason)
	}
}
