package hub

// MaxFrameBytes bounds one client frame on every transport: a WebSocket
// message (a bigger one closes the connection with 1009), a gRPC message,
// a gRPC-Web WebSocket message, a REST request body. It is the default;
// transports that let it be configured start from it.
const MaxFrameBytes = 64 << 10
