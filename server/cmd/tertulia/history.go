package main

import (
	"flag"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// historyOptions are the flags of room history and resend de-duplication.
// They apply to every namespace until the config file says otherwise.
type historyOptions struct {
	size  *int
	ttl   *time.Duration
	dedup *time.Duration
}

func historyFlags(fs *flag.FlagSet) historyOptions {
	return historyOptions{
		size:  fs.Int("history-size", hub.DefaultHistorySize, "messages kept per room and per private inbox (0 turns room history off)"),
		ttl:   fs.Duration("history-ttl", hub.DefaultHistoryTTL, "how long a room or inbox message is kept"),
		dedup: fs.Duration("dedup-window", hub.DefaultDedupWindow, "how long a frame id is remembered so that a resend is not delivered twice"),
	}
}

// config is the hub's history configuration the flags ask for.
func (o historyOptions) config() hub.Config {
	lim := hub.LogLimits{Size: *o.size, TTL: *o.ttl}
	if lim.Size <= 0 {
		lim.Size = -1 // off: LogLimits's zero means the default
	}
	return hub.Config{History: func(string) hub.LogLimits { return lim }, Inbox: hub.LogLimits{Size: max(*o.size, 0), TTL: *o.ttl}, DedupWindow: *o.dedup}
}
