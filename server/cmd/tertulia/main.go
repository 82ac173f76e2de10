// Command tertulia is the Tertulia chat server and its tools.
//
//	tertulia serve [flags]         run a node (gRPC on :9090, HTTP on :8000)
//	tertulia token --user NAME     print a token signed like the server's
//
// Every flag may also be given in the environment as TERTULIA_ plus the flag
// name in upper snake case: --http-addr is TERTULIA_HTTP_ADDR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/tertulia/tertulia/server/logs"
)

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run a Tertulia node", runServe},
		{"token", "print a JWT signed like the server's", runToken},
		{"bridge", "run the WebSocket bridge apart, in front of a node (--upstream)", runBridge},
		{"bench", "load a running server and measure it (clients/load)", runBench},
		{"soak", "churn thousands of connections against a running server; check memory and goroutines come back", runSoak},
		{"chat", "chat from the terminal over gRPC", runChat},
	}
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tertulia:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return flag.ErrHelp
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tertulia <command> [flags]")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

// parse parses args into fs, then fills every flag not given on the command
// line from its TERTULIA_* environment variable.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := EnvName(f.Name)
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

// EnvName is the environment variable for a flag: http-addr -> TERTULIA_HTTP_ADDR.
func EnvName(flagName string) string {
	return "TERTULIA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// logFlags are --log-level and --log-format, of the commands that run
// servers.
type logFlags struct{ level, format *string }

func addLogFlags(fs *flag.FlagSet) logFlags {
	return logFlags{
		level:  fs.String("log-level", "info", "debug, info, warn or error"),
		format: fs.String("log-format", "text", "text or json"),
	}
}

// logger returns the logger the flags ask for, writing to w.
func (f logFlags) logger(w io.Writer) (*slog.Logger, error) {
	return logs.New(w, *f.format, *f.level)
}
