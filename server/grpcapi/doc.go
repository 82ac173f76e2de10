// Package grpcapi is the Chat service: it adapts the hub to chat.v1. It
// owns the session contract every transport uses (session.go: Open, a
// Session with Handle, Drain and Close, and a FrameSink that receives
// encoded frames and a typed disconnect), serves that contract over a
// gRPC Connect stream (connect.go), and provides the unary RPCs, the
// AdminService (admin.go: disconnect, kick, bans), the AuthService, the
// interceptors that authenticate callers, and the codec
// that lets one encoded frame be shared by every stream it goes to.
//
// A client frame's way: a transport decodes it into a chatv1.ClientFrame
// and calls Session.Handle; CommandFromFrame turns it into a hub.Command;
// the hub carries it out and publishes an event; the hub encodes each event
// once per WireFormat (FrameFromEvent, then the format's Encode) and hands
// the bytes to every recipient's FrameSink.
package grpcapi
