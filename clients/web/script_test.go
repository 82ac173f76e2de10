package web_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runScript runs the browser script name (in this directory) with Node,
// its environment extended by env, for at most two minutes. Each line the
// script prints is logged; one that act takes (ok) is a request to the
// test: act carries it out and answer goes back on the script's stdin. The
// test fails unless the script printed OK and exited cleanly.
func runScript(t *testing.T, nodeBin, name string, env []string, act func(line string) (answer string, ok bool)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, name)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var passed bool
	var failure string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		if answer, ok := act(line); ok {
			io.WriteString(stdin, answer+"\n")
			continue
		}
		switch {
		case line == "OK":
			passed = true
		case strings.HasPrefix(line, "FAIL"):
			failure = line
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil || !passed {
		t.Fatalf("%s: %v %s; want OK (see the steps above)", name, err, failure)
	}
}
