// Package broker holds the implementations of hub.Broker: memory, the
// embedded default (a cluster of one node), and redis, which joins several
// nodes. brokertest is the conformance suite both pass. This package itself
// holds what both implement alike (the order of a ban list).
package broker
