package grpcapi

import (
	"context"

	"google.golang.org/grpc/metadata"
)

// acceptLanguage is the client's "accept-language" metadata, which gRPC-Web
// and grpc-gateway carry over from the browser's Accept-Language header: the
// language of a session's texts when its token names none (see hub.Identity).
func acceptLanguage(ctx context.Context) string {
	for _, key := range []string{"accept-language", "grpcgateway-accept-language"} {
		if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
