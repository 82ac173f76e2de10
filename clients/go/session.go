package client

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// Session is one chat session: a Connect stream. Its sending methods are
// safe for concurrent use. Events must be read: a session whose events are
// not read stops reading from the network, and the server will in time
// disconnect it as a slow consumer.
type Session struct {
	stream chatv1.ChatService_ConnectClient
	cancel context.CancelFunc
	events chan *chatv1.ServerFrame

	sendMu sync.Mutex // one sender at a time on the stream

	errMu sync.Mutex // protects err
	err   error
}

// eventBuffer is how many events a session holds for a slow reader.
const eventBuffer = 256

// Connect opens a session. The server answers first with a system event
// carrying the connection id. The session ends when ctx is cancelled, when
// Close is called, or when the server ends it (see Err).
func (c *Client) Connect(ctx context.Context) (*Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.chat.Connect(c.ctx(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	s := &Session{stream: stream, cancel: cancel, events: make(chan *chatv1.ServerFrame, eventBuffer)}
	go s.read()
	return s, nil
}

func (s *Session) read() {
	defer close(s.events)
	for {
		f, err := s.stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && status.Code(err) != codes.Canceled {
				s.errMu.Lock()
				s.err = err
				s.errMu.Unlock()
			}
			return
		}
		s.events <- f
	}
}

// Events delivers the server's frames in order. It is closed when the
// session ends; Err then says why.
func (s *Session) Events() <-chan *chatv1.ServerFrame { return s.events }

// Err is the status the server ended the session with, nil if the client
// ended it or the server closed it cleanly. Valid once Events is closed.
func (s *Session) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Close ends the session: it half-closes the stream, then cancels it. A
// send under way, even one waiting for a write the server does not take,
// fails at once: then the stream is cancelled before Close waits for its
// turn to half-close.
func (s *Session) Close() error {
	if !s.sendMu.TryLock() {
		s.cancel()
		s.sendMu.Lock()
	}
	err := s.stream.CloseSend()
	s.sendMu.Unlock()
	s.cancel()
	return err
}

// CloseSend tells the server this client will send nothing more. The server
// writes what it has queued for the session, then ends it: Events is closed
// once everything has arrived.
func (s *Session) CloseSend() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.CloseSend()
}

// SendFrame sends any client frame.
func (s *Session) SendFrame(f *chatv1.ClientFrame) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.stream.Send(f)
}

// Join joins room; the room's members, this session included, get room_joined.
func (s *Session) Join(room string) error {
	return s.SendFrame(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: room}}})
}

// Leave leaves room.
func (s *Session) Leave(room string) error {
	return s.SendFrame(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: room}}})
}

// Send posts message to room, or to everyone connected if room is empty.
func (s *Session) Send(room, message string) error {
	return s.SendFrame(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Room: room, Message: message}}})
}

// Private sends message to every connection of user; a private_sent event
// tells how many it reached.
func (s *Session) Private(user, message string) error {
	return s.SendFrame(&chatv1.ClientFrame{Kind: &chatv1.ClientFrame_PrivateMessage{PrivateMessage: &chatv1.SendPrivateMessage{TargetUser: user, Message: message}}})
}
