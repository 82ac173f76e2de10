package load

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// grpcDialer opens Connect streams, StreamsPerConn of them on each HTTP/2
// connection (1 by default: one TCP connection per simulated user, as real
// clients would have).
type grpcDialer struct {
	addr    string
	perConn int
	tokens  func(user string) (string, error)

	mu    sync.Mutex // protects cc and used
	cc    *grpc.ClientConn
	used  int
	conns []*grpc.ClientConn // every ClientConn opened, closed by closeAll
}

var _ dialer = (*grpcDialer)(nil)

func (d *grpcDialer) name() string { return "grpc" }

func (d *grpcDialer) clientConn() (*grpc.ClientConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cc == nil || d.used >= d.perConn {
		cc, err := grpc.NewClient("passthrough:///"+d.addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			// Small buffers: thousands of connections live in this process.
			grpc.WithReadBufferSize(8<<10), grpc.WithWriteBufferSize(8<<10))
		if err != nil {
			return nil, fmt.Errorf("grpc client %s: %w", d.addr, err)
		}
		d.cc, d.used = cc, 0
		d.conns = append(d.conns, cc)
	}
	d.used++
	return d.cc, nil
}

// closeAll closes every ClientConn; call it after every conn has been closed.
func (d *grpcDialer) closeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, cc := range d.conns {
		cc.Close()
	}
	d.conns, d.cc = nil, nil
}

func (d *grpcDialer) dial(ctx context.Context, user, room, joinID string, m *member) (conn, error) {
	cc, err := d.clientConn()
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if user != "" {
		tok, err := d.tokens(user)
		if err != nil {
			cancel()
			return nil, err
		}
		sctx = metadata.AppendToOutgoingContext(sctx, "authorization", "Bearer "+tok)
	}
	// The stream outlives ctx (which only bounds the dial): wait for the
	// stream to be established under ctx's deadline by waiting for headers.
	stream, err := chatv1.NewChatServiceClient(cc).Connect(sctx, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("connect stream: %w", err)
	}
	c := &grpcConn{stream: stream, cancel: cancel, done: make(chan struct{})}
	go c.read(m)
	if room != "" {
		if err := c.join(room, joinID); err != nil {
			c.close()
			return nil, fmt.Errorf("join %s: %w", room, err)
		}
	}
	if err := m.waitReady(ctx); err != nil {
		c.close()
		return nil, fmt.Errorf("set-up: %w", err)
	}
	return c, nil
}

type grpcConn struct {
	stream chatv1.ChatService_ConnectClient
	cancel context.CancelFunc
	done   chan struct{}
	closed atomic.Bool
}

func (c *grpcConn) read(m *member) {
	defer close(c.done)
	var f rawFrame
	for first := true; ; first = false {
		if err := c.stream.RecvMsg(&f); err != nil {
			m.onEnd(err, c.closed.Load())
			return
		}
		now := time.Now()
		switch field, body, id := f.event(); {
		case first && field == fieldSystem:
			m.onWelcome()
		case first:
			m.failSetup(fmt.Errorf("got event field %d first, want the welcome (system)", field))
		case field == fieldMessage:
			onMessage(m, nested(body, fieldMessageText), now)
		case field == fieldRoomJoined:
			onJoined(m, id)
		case field == fieldError:
			onError(m, nested(body, fieldErrorCode), id, nested(body, fieldErrorMessage))
		}
	}
}

func (c *grpcConn) join(room, id string) error {
	return c.stream.Send(&chatv1.ClientFrame{Id: id, Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: room}}})
}

func (c *grpcConn) send(room string, payload []byte) error {
	return c.stream.Send(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: room, Message: string(payload)}}})
}

func (c *grpcConn) close() {
	c.closed.Store(true)
	c.cancel()
	<-c.done
}

// rawCodec lets the tool read ServerFrames without decoding them: decoding
// every frame into Go values costs the tool more than the server spends
// sending it, and the tool only needs two fields. Client frames are
// marshalled as usual. Its name is "proto" so that the wire is unchanged.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*rawFrame)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	f.b = f.b[:0]
	for _, buf := range data {
		f.b = append(f.b, buf.ReadOnlyData()...)
	}
	return nil
}

// rawFrame is a chat.v1.ServerFrame still in its wire form.
type rawFrame struct{ b []byte }

// Field numbers of chat.v1 (proto/chat/v1/chat.proto) that the tool reads.
const (
	fieldID           protowire.Number = 2  // ServerFrame.id
	fieldSystem       protowire.Number = 3  // ServerFrame.system
	fieldMessage      protowire.Number = 6  // ServerFrame.message
	fieldRoomJoined   protowire.Number = 7  // ServerFrame.room_joined
	fieldError        protowire.Number = 12 // ServerFrame.error
	fieldMessageText  protowire.Number = 3  // Message.message
	fieldErrorMessage protowire.Number = 1  // Error.message
	fieldErrorCode    protowire.Number = 2  // Error.code
)

// event returns the field number and body of the frame's event, and its id.
func (f *rawFrame) event() (field protowire.Number, body, id []byte) {
	b := f.b
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, nil, nil
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return 0, nil, nil
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, nil, nil
		}
		b = b[n:]
		switch {
		case num == fieldID:
			id = v
		case num >= 3: // the event oneof: fields 3 and up
			field, body = num, v
		}
	}
	return field, body, id
}

// nested returns the bytes of field num of message b, nil if absent.
func nested(b []byte, num protowire.Number) []byte {
	for len(b) > 0 {
		n0, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil
		}
		b = b[n:]
		if n0 == num && typ == protowire.BytesType {
			v, _ := protowire.ConsumeBytes(b)
			return v
		}
		if n = protowire.ConsumeFieldValue(n0, typ, b); n < 0 {
			return nil
		}
		b = b[n:]
	}
	return nil
}
