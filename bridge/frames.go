package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
	"github.com/tertulia/tertulia/server/hub"
)

// This file is the one mapping between the JSON frames of DESIGN.md and
// chat.v1 frames. Every path to a browser uses it; testdata holds its golden
// files.

// timeLayout is RFC 3339 in UTC with milliseconds, which every browser's
// Date parses.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// serverJSON is a server frame as JSON. Fields a frame type does not carry
// are left empty and omitted; delivered is optional because 0 is an answer.
// EncodeFrame writes it with appendJSON; its tags say what encoding/json
// would write, which appendJSON must match. It holds no pointers, so that
// filling one on the stack allocates nothing.
type serverJSON struct {
	Type         string     `json:"type"`
	Timestamp    frameTime  `json:"timestamp"`
	ID           string     `json:"id,omitempty"`
	Message      string     `json:"message,omitempty"`
	Sender       string     `json:"sender,omitempty"`
	UserID       string     `json:"user_id,omitempty"`
	Username     string     `json:"username,omitempty"`
	ConnectionID string     `json:"connection_id,omitempty"`
	Room         string     `json:"room,omitempty"`
	TargetUser   string     `json:"target_user,omitempty"`
	Delivered    opt[int32] `json:"delivered,omitzero"`
	Code         string     `json:"code,omitempty"`
	// Offset and Epoch place a message in its log, or give a log's position;
	// optional, because offset 0 and epoch "" are answers too.
	Offset    opt[uint64]       `json:"offset,omitzero"`
	Epoch     opt[string]       `json:"epoch,omitzero"`
	Recovered opt[bool]         `json:"recovered,omitzero"`
	Inbox     opt[positionJSON] `json:"inbox,omitzero"`
	ExpiresAt opt[frameTime]    `json:"expires_at,omitzero"`
	Kicked    bool              `json:"kicked,omitempty"`
	Yours     bool              `json:"yours,omitempty"`
}

// positionJSON is a place in a log, as frames carry it both ways.
type positionJSON struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// setPosition puts offset and epoch on j, if there is a position to give.
func (j *serverJSON) setPosition(offset uint64, epoch string) {
	if offset != 0 || epoch != "" {
		j.Offset, j.Epoch = some(offset), some(epoch)
	}
}

// setExpiresAt puts ts on j as expires_at, if it is set.
func (j *serverJSON) setExpiresAt(ts *timestamppb.Timestamp) {
	if ts != nil {
		j.ExpiresAt = some(frameTime{ts.AsTime()})
	}
}

// EncodeFrame returns f as one JSON text frame; its type is the name of its
// kind in the core's table (hub.Kind.String). It is safe for concurrent
// use; the hub calls it once per event for all browser sessions.
func EncodeFrame(f *chatv1.ServerFrame) ([]byte, error) {
	var j serverJSON
	if err := j.fill(f); err != nil {
		return nil, err
	}
	// Pages render text with textContent, so "<" needs no escaping here, and
	// frames stay readable in a browser's devtools: the JSON is
	// encoding/json's with HTML escaping off (see appendJSON).
	return j.appendJSON(make([]byte, 0, frameSizeHint(&j))), nil
}

// fill sets the fields of j, which is empty, to those of f's JSON frame.
func (j *serverJSON) fill(f *chatv1.ServerFrame) error {
	j.ID, j.Timestamp = f.GetId(), frameTime{f.GetTimestamp().AsTime()}
	switch e := f.GetEvent().(type) {
	case *chatv1.ServerFrame_System:
		j.Type = hub.KindSystem.String()
		j.Message, j.ConnectionID, j.UserID = e.System.GetMessage(), e.System.GetConnectionId(), e.System.GetUserId()
		j.Inbox = some(positionJSON{Offset: e.System.GetInbox().GetOffset(), Epoch: e.System.GetInbox().GetEpoch()})
		j.setExpiresAt(e.System.GetExpiresAt())
	case *chatv1.ServerFrame_UserJoined:
		j.Type = hub.KindUserJoined.String()
		j.Message, j.UserID, j.Username = e.UserJoined.GetMessage(), e.UserJoined.GetUserId(), e.UserJoined.GetUsername()
	case *chatv1.ServerFrame_UserLeft:
		j.Type = hub.KindUserLeft.String()
		j.Message, j.UserID, j.Username = e.UserLeft.GetMessage(), e.UserLeft.GetUserId(), e.UserLeft.GetUsername()
	case *chatv1.ServerFrame_Message:
		j.Type = hub.KindMessage.String()
		m := e.Message
		j.Sender, j.UserID, j.Message, j.Room = m.GetSender(), m.GetUserId(), m.GetMessage(), m.GetRoom()
		j.setPosition(m.GetOffset(), m.GetEpoch())
	case *chatv1.ServerFrame_RoomJoined:
		j.Type = hub.KindRoomJoined.String()
		r := e.RoomJoined
		j.Message, j.Room, j.UserID, j.Username = r.GetMessage(), r.GetRoom(), r.GetUserId(), r.GetUsername()
		j.setPosition(r.GetOffset(), r.GetEpoch())
		if r.Recovered != nil {
			j.Recovered = some(*r.Recovered)
		}
	case *chatv1.ServerFrame_RoomLeft:
		j.Type = hub.KindRoomLeft.String()
		r := e.RoomLeft
		j.Message, j.Room, j.UserID, j.Username = r.GetMessage(), r.GetRoom(), r.GetUserId(), r.GetUsername()
		j.Kicked, j.Yours = r.GetKicked(), r.GetYours()
	case *chatv1.ServerFrame_PrivateMessage:
		j.Type = hub.KindPrivateMessage.String()
		p := e.PrivateMessage
		j.Sender, j.UserID, j.Message = p.GetSender(), p.GetUserId(), p.GetMessage()
		j.setPosition(p.GetOffset(), p.GetEpoch())
	case *chatv1.ServerFrame_PrivateSent:
		j.Type = hub.KindPrivateSent.String()
		j.Message, j.TargetUser, j.Delivered = e.PrivateSent.GetMessage(), e.PrivateSent.GetTargetUser(), some(e.PrivateSent.GetDelivered())
	case *chatv1.ServerFrame_AdminBroadcast:
		j.Type = hub.KindAdminBroadcast.String()
		j.Message, j.Room = e.AdminBroadcast.GetMessage(), e.AdminBroadcast.GetRoom()
	case *chatv1.ServerFrame_Error:
		j.Type = hub.KindError.String()
		j.Message, j.Code = e.Error.GetMessage(), e.Error.GetCode()
	case *chatv1.ServerFrame_Ack:
		j.Type = "ack"
		j.Room = e.Ack.GetRoom()
		j.setPosition(e.Ack.GetOffset(), e.Ack.GetEpoch())
	case *chatv1.ServerFrame_PrivateRecovered:
		j.Type = "private_recovered"
		p := e.PrivateRecovered
		j.Offset, j.Epoch, j.Recovered = some(p.GetOffset()), some(p.GetEpoch()), some(p.GetRecovered())
	case *chatv1.ServerFrame_Refreshed:
		j.Type = hub.KindRefreshed.String()
		j.setExpiresAt(e.Refreshed.GetExpiresAt())
	default:
		return fmt.Errorf("encode server frame: unknown event %T", f.GetEvent())
	}
	return nil
}

// frameSizeHint is about the size of j as JSON: its strings, and room for
// the keys, numbers and a few escapes.
func frameSizeHint(j *serverJSON) int {
	return 160 + len(j.ID) + len(j.Message) + len(j.Sender) + len(j.UserID) + len(j.Username) +
		len(j.ConnectionID) + len(j.Room) + len(j.TargetUser) + len(j.Code)
}

// ErrorFrame is the error frame the bridge itself answers a bad client frame
// with; id echoes the frame's id when it could be read.
func ErrorFrame(now time.Time, id, code, message string) *chatv1.ServerFrame {
	return &chatv1.ServerFrame{
		Timestamp: timestamppb.New(now),
		Id:        id,
		Event:     &chatv1.ServerFrame_Error{Error: &chatv1.Error{Code: code, Message: message}},
	}
}

// The codes of the error frames the bridge sends for frames it cannot read,
// from the core's catalog.
const (
	CodeInvalidJSON          = hub.CodeInvalidJSON
	CodeInvalidFrame         = hub.CodeInvalidFrame
	CodeUnknownType          = hub.CodeUnknownType
	CodeAlreadyAuthenticated = hub.CodeAlreadyAuthenticated
)

// FrameError is a client frame the bridge could not map. The connection
// goes on: the client is told with an error frame.
type FrameError struct {
	ID      string // the frame's id, if it could be read
	Code    string
	Message string // in English
	// refusal is the same error for the hub, which writes it in the
	// session's language.
	refusal *hub.Error
}

func (e *FrameError) Error() string { return e.Code + ": " + e.Message }

func frameError(id, code, format string, args ...any) *FrameError {
	r := hub.Errorf(code, format, args...)
	return &FrameError{ID: id, Code: code, Message: r.Message, refusal: r}
}

// Refusal is e as the hub refuses a frame (see hub.Session.Refuse).
func (e *FrameError) Refusal() *hub.Error {
	if e.refusal == nil {
		return hub.Errorf(e.Code, "%s", e.Message)
	}
	return e.refusal
}

// clientJSON is a client frame as JSON. Type is a pointer so that a frame
// without one can be told from one with an empty type (both are messages).
type clientJSON struct {
	Type       *string `json:"type"`
	ID         string  `json:"id"`
	Message    string  `json:"message"`
	Room       string  `json:"room"`
	TargetUser string  `json:"target_user"`
	Token      string  `json:"token"`
	// Since and History ask a join_room, Since a recover_private, for a
	// replay of the log.
	Since   *positionJSON `json:"since"`
	History int32         `json:"history"`
}

func (p *positionJSON) proto() *chatv1.Position {
	if p == nil {
		return nil
	}
	return &chatv1.Position{Offset: p.Offset, Epoch: p.Epoch}
}

// ClientMessage is one decoded client frame: either a chat frame, or an
// auth frame carrying a token.
type ClientMessage struct {
	Frame *chatv1.ClientFrame // nil for an auth frame
	Token string              // set only by an auth frame
}

// DecodeFrame maps one JSON client frame. A frame without a type is a
// message, as in the seed. Its error, if any, is a *FrameError. Fields a
// frame type does not use are ignored; checks on values (empty message,
// room names) are the hub's.
func DecodeFrame(data []byte) (ClientMessage, error) {
	var j clientJSON
	if err := json.Unmarshal(data, &j); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if typeErr.Field != "" {
				return ClientMessage{}, frameError(j.ID, CodeInvalidFrame, "field %q must be a JSON %s, not a JSON %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
			}
			return ClientMessage{}, frameError(j.ID, CodeInvalidFrame, "frame must be a JSON object")
		}
		return ClientMessage{}, frameError("", CodeInvalidJSON, "frame is not valid JSON")
	}
	f := &chatv1.ClientFrame{Id: j.ID}
	typ := "message"
	if j.Type != nil && *j.Type != "" {
		typ = *j.Type
	}
	switch typ {
	case "message":
		f.Kind = &chatv1.ClientFrame_Message{Message: &chatv1.SendMessage{Message: j.Message, Room: j.Room}}
	case "join_room":
		f.Kind = &chatv1.ClientFrame_JoinRoom{JoinRoom: &chatv1.JoinRoom{Room: j.Room, Since: j.Since.proto(), History: j.History}}
	case "leave_room":
		f.Kind = &chatv1.ClientFrame_LeaveRoom{LeaveRoom: &chatv1.LeaveRoom{Room: j.Room}}
	case "private_message":
		f.Kind = &chatv1.ClientFrame_PrivateMessage{PrivateMessage: &chatv1.SendPrivateMessage{TargetUser: j.TargetUser, Message: j.Message}}
	case "recover_private":
		if j.Since == nil {
			return ClientMessage{}, frameError(j.ID, CodeInvalidFrame, "recover_private needs since: {offset, epoch}")
		}
		f.Kind = &chatv1.ClientFrame_RecoverPrivate{RecoverPrivate: &chatv1.RecoverPrivate{Since: j.Since.proto()}}
	case "refresh":
		f.Kind = &chatv1.ClientFrame_Refresh{Refresh: &chatv1.Refresh{Token: j.Token}}
	case "auth":
		return ClientMessage{Token: j.Token}, nil
	default:
		return ClientMessage{}, frameError(j.ID, CodeUnknownType, "unknown frame type %.64q", typ)
	}
	return ClientMessage{Frame: f}, nil
}

// jsonKind names the kind of JSON value a field of type t takes: a client
// is told what to send, not the Go type it is decoded into
// ("bridge.positionJSON"). The words are English type names, left
// untranslated, as the codes are.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return jsonKind(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "non-negative integer"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	}
	return "number"
}
