// Package cli is Tertulia's terminal chat, built on the Go client. It reads
// lines from its input and prints the session's events as text:
//
//	hello                 send to the current room (the lobby until you join one)
//	/join ROOM            join ROOM, show its recent history, make it the current room
//	/leave [ROOM]         leave ROOM (default: the current room)
//	/msg USER TEXT        private message to every connection of USER
//	/lobby                send to everyone from now on
//	/quit                 end the session
package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

// Config says where and as whom to chat.
type Config struct {
	Addr  string // gRPC address, host:port
	Token string // JWT; empty for a guest (where the server allows guests)
	// History is how many of a room's last messages /join shows. Default
	// DefaultHistory; negative for none.
	History int
}

// DefaultHistory is how many past messages /join shows by default.
const DefaultHistory = 20

// join is the frame that joins room and asks for its last history messages,
// which the server sends after the room_joined, before live ones.
func join(room string, history int) *chatv1.ClientFrame {
	switch {
	case history == 0:
		history = DefaultHistory
	case history < 0:
		history = 0
	}
	return &chatv1.ClientFrame{Kind: &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: room, History: int32(history)}}}
}

// Run chats until in ends, /quit, ctx is cancelled or the server ends the
// session. It returns the server's reason when the server ended it.
func Run(ctx context.Context, cfg Config, in io.Reader, out io.Writer) error {
	var opts []client.Option
	if cfg.Token != "" {
		opts = append(opts, client.WithToken(cfg.Token))
	}
	c, err := client.Dial(cfg.Addr, opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	defer s.Close()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for f := range s.Events() {
			fmt.Fprintln(out, Format(f))
		}
	}()

	room := ""
	lines := bufio.NewScanner(in)
read:
	for lines.Scan() {
		line := strings.TrimSpace(lines.Text())
		if line == "" {
			continue
		}
		var err error
		cmd, arg, _ := strings.Cut(line, " ")
		switch cmd {
		case "/quit":
			break read
		case "/join":
			if err = s.SendFrame(join(arg, cfg.History)); err == nil {
				room = arg
			}
		case "/leave":
			if arg == "" {
				arg = room
			}
			if err = s.Leave(arg); err == nil && arg == room {
				room = ""
			}
		case "/lobby":
			room = ""
		case "/msg":
			user, text, _ := strings.Cut(arg, " ")
			err = s.Private(user, text)
		default:
			if strings.HasPrefix(cmd, "/") {
				fmt.Fprintf(out, "unknown command %s (try /join, /leave, /msg, /lobby, /quit)\n", cmd)
				continue
			}
			err = s.Send(room, line)
		}
		if err != nil {
			break read // the session ended; its reason is below
		}
	}
	// Input is over: half-close, and print what the server still has for us
	// (the answers to our last lines) before the session ends.
	s.CloseSend()
	wg.Wait()
	if err := s.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return lines.Err()
}

// Format renders one server frame as a line of text.
func Format(f *chatv1.ServerFrame) string {
	ts := f.GetTimestamp().AsTime().Local().Format("15:04:05")
	switch e := f.GetEvent().(type) {
	case *chatv1.ServerFrame_System:
		return fmt.Sprintf("[%s] * %s (you are %s)", ts, e.System.Message, e.System.UserId)
	case *chatv1.ServerFrame_UserJoined:
		return fmt.Sprintf("[%s] * %s", ts, e.UserJoined.Message)
	case *chatv1.ServerFrame_UserLeft:
		return fmt.Sprintf("[%s] * %s", ts, e.UserLeft.Message)
	case *chatv1.ServerFrame_Message:
		if e.Message.Room != "" {
			return fmt.Sprintf("[%s] #%s <%s> %s", ts, e.Message.Room, e.Message.Sender, e.Message.Message)
		}
		return fmt.Sprintf("[%s] <%s> %s", ts, e.Message.Sender, e.Message.Message)
	case *chatv1.ServerFrame_RoomJoined:
		return fmt.Sprintf("[%s] #%s * %s", ts, e.RoomJoined.Room, e.RoomJoined.Message)
	case *chatv1.ServerFrame_RoomLeft:
		return fmt.Sprintf("[%s] #%s * %s", ts, e.RoomLeft.Room, e.RoomLeft.Message)
	case *chatv1.ServerFrame_PrivateMessage:
		return fmt.Sprintf("[%s] (private) <%s> %s", ts, e.PrivateMessage.Sender, e.PrivateMessage.Message)
	case *chatv1.ServerFrame_PrivateSent:
		return fmt.Sprintf("[%s] * %s (%d delivered)", ts, e.PrivateSent.Message, e.PrivateSent.Delivered)
	case *chatv1.ServerFrame_AdminBroadcast:
		return fmt.Sprintf("[%s] !! %s", ts, e.AdminBroadcast.Message)
	case *chatv1.ServerFrame_Error:
		return fmt.Sprintf("[%s] error: %s (%s)", ts, e.Error.Message, e.Error.Code)
	}
	return fmt.Sprintf("[%s] %v", ts, f)
}
