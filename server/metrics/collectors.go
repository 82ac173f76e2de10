package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tertulia/tertulia/server/broker/redis"
	"github.com/tertulia/tertulia/server/hub"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

func describe(ch chan<- *prometheus.Desc, descs ...*prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

var (
	sessionsDesc       = desc("tertulia_sessions", "Chat sessions attached to this node.")
	roomsDesc          = desc("tertulia_rooms", "Rooms with at least one member on this node.")
	messagesInDesc     = desc("tertulia_messages_in_total", "Client frames handled, by kind (message, join_room, leave_room, private_message, unknown).", "kind")
	deliveriesDesc     = desc("tertulia_deliveries_total", "Frames queued to sessions by fan-out.")
	publishedDesc      = desc("tertulia_published_total", "Events published by this node.")
	disconnectsDesc    = desc("tertulia_disconnects_total", "Sessions ended, by reason (client, done, slow, shutdown, write_error, ...).", "reason")
	slowDesc           = desc("tertulia_slow_disconnects_total", "Sessions closed because they could not keep up.")
	rateLimitedDesc    = desc("tertulia_rate_limited_frames_total", "Client frames refused by a rate limit.")
	historyMessageDesc = desc("tertulia_history_messages", "Messages in the history this node holds (memory broker only).")
	historyBytesDesc   = desc("tertulia_history_bytes", "Bytes of message text in the history this node holds (memory broker only).")
	floodDesc          = desc("tertulia_flood_disconnects_total", "Sessions closed for sending over their rate limits after rate_limited.")
	idTooLongDesc      = desc("tertulia_id_too_long_total", "Client frames refused for an id over 64 bytes.")
	connsRefusedDesc   = desc("tertulia_connections_refused_total", "Sessions, or connections to the gRPC port, refused by a connection cap, by limit (user, ip, node).", "limit")
)

// hubCollector reads a hub's counters at scrape time.
type hubCollector struct{ h *hub.Hub }

func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, sessionsDesc, roomsDesc, messagesInDesc, deliveriesDesc, publishedDesc,
		disconnectsDesc, slowDesc, rateLimitedDesc, historyMessageDesc, historyBytesDesc,
		floodDesc, idTooLongDesc, connsRefusedDesc)
}

func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.h.Metrics()
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(sessionsDesc, m.Sessions.Load())
	gauge(roomsDesc, int64(c.h.Rooms()))
	m.CommandsIn(func(kind string, n int64) { counter(messagesInDesc, n, kind) })
	counter(deliveriesDesc, m.Deliveries.Load())
	counter(publishedDesc, m.Published.Load())
	m.Disconnects(func(reason string, n int64) { counter(disconnectsDesc, n, reason) })
	counter(slowDesc, m.SlowDisconnects.Load())
	counter(rateLimitedDesc, m.RateLimited.Load())
	if msgs, bytes, ok := c.h.HistorySize(); ok {
		gauge(historyMessageDesc, msgs)
		gauge(historyBytesDesc, bytes)
	}
	counter(floodDesc, m.Limits.FloodDisconnects.Load())
	counter(idTooLongDesc, m.Limits.IDTooLong.Load())
	counter(connsRefusedDesc, m.Limits.RefusedUser.Load(), "user")
	counter(connsRefusedDesc, m.Limits.RefusedIP.Load(), "ip")
	counter(connsRefusedDesc, m.Limits.RefusedNode.Load(), "node")
}

var (
	redisPublishedDesc   = desc("tertulia_redis_published_total", "Events published through Redis.")
	redisReceivedDesc    = desc("tertulia_redis_received_total", "Events received from Redis, for any topic.")
	redisLocalOnlyDesc   = desc("tertulia_redis_local_only_total", "Events delivered to this node only, Redis being unreachable.")
	redisReapedDesc      = desc("tertulia_redis_reaped_connections_total", "Connections of crashed nodes this node removed from presence.")
	redisReconnectsDesc  = desc("tertulia_redis_reconnects_total", "Times the Redis pub/sub connection came back after being lost.")
	redisGapsFilledDesc  = desc("tertulia_redis_gaps_filled_total", "Logged messages this node missed on pub/sub and read back from their log.")
	redisGapsLostDesc    = desc("tertulia_redis_gaps_lost_total", "Logged messages this node missed on pub/sub and gave up reading back: Redis did not give them within about the sync timeout while later ones waited, or too many later events waited behind them, or the log no longer held them.")
	redisAppendsDesc     = desc("tertulia_history_appends_total", "Messages this node added to the history in Redis (its size is Redis's: XLEN).")
	redisAppendErrsDesc  = desc("tertulia_history_append_errors_total", "Appends of this node to the history in Redis that failed.")
	redisUnreachableDesc = desc("tertulia_redis_unreachable_total", "Times Redis did not answer a call within its bound and was taken for unreachable until a probe was answered.")
	redisFencedDesc      = desc("tertulia_redis_fenced_total", "Times another broker was found holding this node's id: fenced off (no publishing, no new presence) until it claimed it again.")
)

// redisCollector reads a Redis broker's counters at scrape time.
type redisCollector struct{ m *redis.Metrics }

func (c redisCollector) Describe(ch chan<- *prometheus.Desc) {
	describe(ch, redisPublishedDesc, redisReceivedDesc, redisLocalOnlyDesc, redisReapedDesc, redisReconnectsDesc, redisGapsFilledDesc, redisGapsLostDesc, redisUnreachableDesc,
		redisAppendsDesc, redisAppendErrsDesc, redisFencedDesc)
}

func (c redisCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range []struct {
		d *prometheus.Desc
		n int64
	}{
		{redisPublishedDesc, c.m.Published.Load()},
		{redisReceivedDesc, c.m.Received.Load()},
		{redisLocalOnlyDesc, c.m.LocalOnly.Load()},
		{redisReapedDesc, c.m.Reaped.Load()},
		{redisReconnectsDesc, c.m.Reconnects.Load()},
		{redisGapsFilledDesc, c.m.GapsFilled.Load()},
		{redisGapsLostDesc, c.m.GapsLost.Load()},
		{redisUnreachableDesc, c.m.Unreachable.Load()},
		{redisAppendsDesc, c.m.HistoryAppends.Load()},
		{redisAppendErrsDesc, c.m.HistoryAppendErrors.Load()},
		{redisFencedDesc, c.m.Fenced.Load()},
	} {
		ch <- prometheus.MustNewConstMetric(v.d, prometheus.CounterValue, float64(v.n))
	}
}
