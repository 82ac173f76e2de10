package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestServeRefusesABadPresenceLimit(t *testing.T) {
	for _, v := range []string{"0", "-5"} {
		err := run(context.Background(), []string{"serve", "--dev", "--presence-limit", v,
			"--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0"}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--presence-limit") {
			t.Errorf("serve --presence-limit %s: got %v, want an error naming --presence-limit", v, err)
		}
	}
}
