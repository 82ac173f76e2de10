// Package cluster holds the tests that run several Tertulia nodes sharing one
// real redis-server: cross-node chat over gRPC and WebSocket clients, node
// crashes, Redis outages, and the cross-node delivery benchmark. It has no
// code of its own besides them.
package cluster
