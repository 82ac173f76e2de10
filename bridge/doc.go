// Package bridge lets browsers chat over WebSocket with the seed's JSON
// frames. It maps those frames onto chat.v1 frames (one mapping, in
// frames.go) and drives a chat.v1 Connect session for each browser
// connection, either in this process (InProcess: the hub encodes each event
// to JSON once for every browser, and nothing is encoded as protobuf on the
// way) or over a real gRPC stream to a core node (Remote: the edge scales
// apart from the core). Both share all of the WebSocket code.
//
// A connection costs its reader goroutine and, while frames wait, the hub's
// writer; pings ride on a timer, and a batch of frames goes out in one
// socket write.
package bridge
