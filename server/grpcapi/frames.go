package grpcapi

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
)

// FrameFromEvent is the one mapping of hub events onto chat.v1 frames. Every
// wire format (protobuf for gRPC, JSON for the WebSocket bridge) encodes the
// frame it returns.
func FrameFromEvent(ev *hub.Event) *chatv1.ServerFrame {
	f := &chatv1.ServerFrame{Timestamp: timestamppb.New(ev.Time), Id: ev.ID}
	switch ev.Kind {
	case hub.KindSystem:
		f.Event = &chatv1.ServerFrame_System{System: &chatv1.System{Message: ev.Message, ConnectionId: ev.ConnectionID, UserId: ev.UserID, ExpiresAt: timestamp(ev.ExpiresAt),
			Inbox: &chatv1.Position{Offset: ev.Offset, Epoch: ev.Epoch}}}
	case hub.KindUserJoined:
		f.Event = &chatv1.ServerFrame_UserJoined{UserJoined: &chatv1.UserJoined{Message: ev.Message, UserId: ev.UserID, Username: ev.Sender}}
	case hub.KindUserLeft:
		f.Event = &chatv1.ServerFrame_UserLeft{UserLeft: &chatv1.UserLeft{Message: ev.Message, UserId: ev.UserID, Username: ev.Sender}}
	case hub.KindMessage:
		f.Event = &chatv1.ServerFrame_Message{Message: &chatv1.Message{Sender: ev.Sender, UserId: ev.UserID, Message: ev.Message, Room: ev.Room,
			Offset: ev.Offset, Epoch: ev.Epoch}}
	case hub.KindRoomJoined:
		f.Event = &chatv1.ServerFrame_RoomJoined{RoomJoined: &chatv1.RoomJoined{Message: ev.Message, Room: ev.Room, UserId: ev.UserID, Username: ev.Sender,
			Offset: ev.Offset, Epoch: ev.Epoch, Recovered: recoveredField(ev.Recovered)}}
	case hub.KindRoomLeft:
		f.Event = &chatv1.ServerFrame_RoomLeft{RoomLeft: &chatv1.RoomLeft{Message: ev.Message, Room: ev.Room, UserId: ev.UserID, Username: ev.Sender, Kicked: ev.Kicked, Yours: ev.Yours}}
	case hub.KindPrivateMessage:
		f.Event = &chatv1.ServerFrame_PrivateMessage{PrivateMessage: &chatv1.PrivateMessage{Sender: ev.Sender, UserId: ev.UserID, Message: ev.Message,
			Offset: ev.Offset, Epoch: ev.Epoch}}
	case hub.KindPrivateSent:
		f.Event = &chatv1.ServerFrame_PrivateSent{PrivateSent: &chatv1.PrivateSent{Message: ev.Message, TargetUser: ev.TargetUser, Delivered: int32(ev.Delivered)}}
	case hub.KindAdminBroadcast:
		f.Event = &chatv1.ServerFrame_AdminBroadcast{AdminBroadcast: &chatv1.AdminBroadcast{Message: ev.Message, Room: ev.Room}}
	case hub.KindError:
		f.Event = &chatv1.ServerFrame_Error{Error: &chatv1.Error{Message: ev.Message, Code: ev.Code}}
	case hub.KindAck:
		f.Event = &chatv1.ServerFrame_Ack{Ack: &chatv1.Ack{Room: ev.Room, Offset: ev.Offset, Epoch: ev.Epoch}}
	case hub.KindPrivateRecovered:
		f.Event = &chatv1.ServerFrame_PrivateRecovered{PrivateRecovered: &chatv1.PrivateRecovered{
			Recovered: ev.Recovered == hub.Recovered, Offset: ev.Offset, Epoch: ev.Epoch}}
	case hub.KindRefreshed:
		f.Event = &chatv1.ServerFrame_Refreshed{Refreshed: &chatv1.Refreshed{ExpiresAt: timestamp(ev.ExpiresAt)}}
	}
	return f
}

// recoveredField is RoomJoined.recovered: set only when a recovery was asked for.
func recoveredField(r hub.Recovery) *bool {
	if r == hub.RecoveryNone {
		return nil
	}
	ok := r == hub.Recovered
	return &ok
}

// positionOf maps a client's position; nil when it sent none.
func positionOf(p *chatv1.Position) *hub.Position {
	if p == nil {
		return nil
	}
	return &hub.Position{Offset: p.GetOffset(), Epoch: p.GetEpoch()}
}

// timestamp is t as a proto timestamp, nil (absent) for the zero time.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// CommandFromFrame maps a client frame onto a hub command. A frame with no
// kind becomes a command the hub refuses with an error event.
func CommandFromFrame(f *chatv1.ClientFrame) hub.Command {
	c := hub.Command{ID: f.GetId()}
	switch k := f.GetKind().(type) {
	case *chatv1.ClientFrame_Message:
		c.Kind, c.Message, c.Room = hub.CmdMessage, k.Message.GetMessage(), k.Message.GetRoom()
	case *chatv1.ClientFrame_JoinRoom:
		c.Kind, c.Room = hub.CmdJoinRoom, k.JoinRoom.GetRoom()
		c.Since, c.History = positionOf(k.JoinRoom.GetSince()), int(k.JoinRoom.GetHistory())
	case *chatv1.ClientFrame_LeaveRoom:
		c.Kind, c.Room = hub.CmdLeaveRoom, k.LeaveRoom.GetRoom()
	case *chatv1.ClientFrame_PrivateMessage:
		c.Kind, c.TargetUser, c.Message = hub.CmdPrivateMessage, k.PrivateMessage.GetTargetUser(), k.PrivateMessage.GetMessage()
	case *chatv1.ClientFrame_RecoverPrivate:
		c.Kind, c.Since = hub.CmdRecoverPrivate, positionOf(k.RecoverPrivate.GetSince())
	case *chatv1.ClientFrame_Refresh:
		c.Kind, c.Token = hub.CmdRefresh, k.Refresh.GetToken()
	}
	return c
}
