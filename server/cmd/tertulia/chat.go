package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/tertulia/tertulia/clients/cli"
	client "github.com/tertulia/tertulia/clients/go"
	chatv1 "github.com/tertulia/tertulia/proto/chat/v1"
)

func runChat(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:9090", "gRPC address of a Tertulia node")
	token := fs.String("token", "", "JWT (see `tertulia token`); empty for a guest")
	history := fs.Int("history", cli.DefaultHistory, "how many past messages /join shows (0 for none)")
	user := fs.String("user", "", "dev mode only: get a token for this user from the server's test-token service")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	if *token == "" && *user != "" {
		c, err := client.Dial(*addr)
		if err != nil {
			return err
		}
		r, err := chatv1.NewAuthServiceClient(c.Conn()).IssueToken(ctx, &chatv1.IssueTokenRequest{Username: *user})
		c.Close()
		if err != nil {
			return fmt.Errorf("get a dev token (is the server in --dev?): %w", err)
		}
		*token = r.GetAccessToken()
	}
	fmt.Fprintln(stderr, "type to chat; /join ROOM, /leave [ROOM], /msg USER TEXT, /lobby, /quit")
	if *history == 0 {
		*history = -1 // cli.Config: negative for none
	}
	return cli.Run(ctx, cli.Config{Addr: *addr, Token: *token, History: *history}, os.Stdin, stdout)
}
