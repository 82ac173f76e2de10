package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tertulia/tertulia/server/auth"
)

func runToken(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id (sub) and display name")
	admin := fs.Bool("admin", false, "grant the admin role")
	secret := fs.String("jwt-secret", "", "HS256 secret, as the server's --jwt-secret")
	issuer := fs.String("jwt-issuer", "", "iss claim, as the server's --jwt-issuer")
	audience := fs.String("jwt-audience", "", "aud claim, as the server's --jwt-audience")
	ttl := fs.Duration("ttl", 0, "token lifetime (default 24h)")
	rooms := fs.String("rooms", "", "comma-separated rooms claim: rooms or patterns (team:*) of private namespaces")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *user == "" {
		return fmt.Errorf("--user is required")
	}
	a, err := auth.New(auth.Config{Secret: []byte(*secret), Issuer: *issuer, Audience: *audience, TTL: *ttl})
	if err != nil {
		return err
	}
	tok, err := a.Issue(*user, *admin, splitList(*rooms)...)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
