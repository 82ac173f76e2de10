// Package grpcapi adapts the hub to gRPC: the chat.v1 ChatService and
// AuthService, the interceptors that authenticate callers, and the codec
// that lets one encoded frame be shared by every stream it goes to.
package grpcapi
