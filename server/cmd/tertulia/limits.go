package main

import (
	"flag"
	"time"

	"github.com/tertulia/tertulia/server/hub"
	"github.com/tertulia/tertulia/server/node"
)

// limitFlags defines the --limit-* flags of DESIGN.md's "Limits" on fs
// (TERTULIA_LIMIT_* in the environment) and returns what reads them once
// fs is parsed. On the command line 0 turns a limit off.
func limitFlags(fs *flag.FlagSet) func() node.Limits {
	d := node.DefaultLimits()
	msgs := fs.Float64("limit-messages-per-second", d.MessagesPerSecond, "messages per second per connection (token bucket); 0: off")
	burst := fs.Int("limit-messages-burst", d.MessagesBurst, "burst of the per-connection message bucket")
	user := fs.Float64("limit-user-messages-per-second", d.UserMessagesPerSecond, "messages per second per user on this node; 0: off")
	joins := fs.Float64("limit-joins-per-second", d.JoinsPerSecond, "room joins per second per connection; 0: off")
	perUser := fs.Int("limit-conns-per-user", d.ConnsPerUser, "connections per user on this node; 0: off")
	perIP := fs.Int("limit-conns-per-ip", d.ConnsPerIP, "connections per client IP address on this node; 0: off")
	perNode := fs.Int("limit-conns-per-node", d.ConnsPerNode, "connections on this node; 0: off")
	streams := fs.Int("limit-grpc-streams-per-conn", d.GRPCStreamsPerConn, "concurrent streams per gRPC connection; 0: off")
	idle := fs.Duration("limit-http-idle-timeout", d.HTTPIdleTimeout, "close keep-alive HTTP and stream-less gRPC connections idle this long; 0: off")
	return func() node.Limits {
		return node.Limits{
			Limits: hub.Limits{
				MessagesPerSecond:     offIfZero(*msgs),
				MessagesBurst:         offIfZero(*burst),
				UserMessagesPerSecond: offIfZero(*user),
				JoinsPerSecond:        offIfZero(*joins),
				ConnsPerUser:          offIfZero(*perUser),
				ConnsPerIP:            offIfZero(*perIP),
				ConnsPerNode:          offIfZero(*perNode),
			},
			GRPCStreamsPerConn: offIfZero(*streams),
			HTTPIdleTimeout:    offIfZero(*idle),
		}
	}
}

// offIfZero maps a flag's 0 ("off") onto hub.Off: in the Go structs 0 means
// the default.
func offIfZero[T int | float64 | time.Duration](v T) T {
	if v == 0 {
		return hub.Off
	}
	return v
}
