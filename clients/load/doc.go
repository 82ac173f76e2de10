// Package load is Tertulia's load tool: it opens many real connections to a
// running server, over the WebSocket bridge (JSON frames) or over gRPC, drives
// one scenario, and measures what a user would see: deliveries per second,
// latency from the publisher's send to the subscriber's read, messages lost,
// connections dropped, and the CPU and memory the server and the tool used.
//
// Scenarios:
//
//   - fanout: N subscribers in one room, one publisher at R messages/s for D.
//   - rooms:  N connections spread over M rooms, every member publishing.
//   - idle:   N connections, each joined to a room, held for D; connect rate
//     and server RSS per connection.
//   - churn:  a fanout while other connections keep opening, joining and closing.
//   - reconnect: N subscribers in one room, all closed at once and all
//     reconnected and re-joined at once, as after a server restart (the time
//     until the last is back), then a fanout to show none is missing.
//
// Every connection is a distinct user with a token of its own and every
// subscriber joins the room, as in a deployment; Config.Users and the lobby
// (Config.Room "-") give the lighter set-up of sharing users, to compare.
//
// Over WebSocket the tool has two clients: its own (Client "own"), which
// classifies server frames by scanning their bytes so that one core reads a
// million a second, and github.com/coder/websocket with encoding/json
// (Client "coder"), which reads them as an ordinary Go client would. The
// tool's CPU time per delivered message, from getrusage over the measured
// phase, is what the server's frames cost that client.
//
// Every loop is bounded by a count and by time, and only loopback targets
// are accepted unless Config.AllowRemote is set. Run is the entry point;
// `tertulia bench` is its command line.
//
// Latency is measured on one clock: the publisher writes its send time into
// the 64-byte payload and the subscriber, in the same process, subtracts it
// from the time it read the frame.
package load
