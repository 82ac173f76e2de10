package node

import (
	"crypto/tls"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tertulia/tertulia/server/tlsconfig"
)

// serverCreds is the gRPC server's TLS, or nothing for plaintext.
func serverCreds(r *tlsconfig.Reloader) grpc.ServerOption {
	if r == nil {
		return grpc.EmptyServerOption{}
	}
	return grpc.Creds(credentials.NewTLS(r.ServerConfig("h2")))
}

// selfCreds are the credentials of the node's connection to its own gRPC
// port (the REST gateway's): TLS trusting exactly its own certificate, or
// plaintext.
func selfCreds(r *tlsconfig.Reloader) credentials.TransportCredentials {
	if r == nil {
		return insecure.NewCredentials()
	}
	return credentials.NewTLS(r.SelfClientConfig())
}

// tlsListener puts TLS on the HTTP listener, under the bridge's listener:
// the bridge reads the start of each request in the clear. The HTTP server
// then sees connections that are not *tls.Conn, so it cannot speak HTTP/2
// on them: only http/1.1 is offered.
func tlsListener(l net.Listener, r *tlsconfig.Reloader) net.Listener {
	if r == nil {
		return l
	}
	return tls.NewListener(l, r.ServerConfig("http/1.1"))
}
