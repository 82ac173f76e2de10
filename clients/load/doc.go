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
//
// Every loop is bounded by a count and by time, and only loopback targets
// are accepted unless Config.AllowRemote is set. Run is the entry point;
// `tertulia bench` is its command line.
//
// Latency is measured on one clock: the publisher writes its send time into
// the 64-byte payload and the subscriber, in the same process, subtracts it
// from the time it read the frame.
package load
