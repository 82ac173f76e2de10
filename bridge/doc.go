// Package bridge lets browsers chat over WebSocket with the seed's JSON
// frames. It maps those frames onto chat.v1 frames (one mapping, in
// frames.go) and runs a chat session for each browser connection, either
// in this process (InProcess, inprocess.go: through the Chat service's
// session contract, grpcapi.Session; the core encodes each event to JSON
// once for every browser, and nothing is encoded as protobuf on the way)
// or over a real gRPC Connect stream to a core node (Remote, remote.go: the
// edge scales apart from the core). Both share all of the WebSocket code:
// admission (admit.go), the upgrade off the listener (listener.go), and a
// connection's reading, writing and closing (read.go, write.go, close.go).
//
// A connection costs its reader goroutine and, while frames wait, the hub's
// writer; pings ride on a timer, and a batch of frames goes out in one
// socket write. A plain client gets one JSON object per WebSocket message;
// a client that negotiated Subprotocol (tertulia.v1) gets the frames of a
// batch in one message, one JSON object per line (write.go).
package bridge
