package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeCommands returns the shell lines of README.md's ```sh blocks that
// talk to a running server, in order.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in && (strings.Contains(line, "localhost:9090") || strings.Contains(line, "localhost:8000")):
			lines = append(lines, line)
		}
	}
	return lines
}

// grpcurlPath makes sure grpcurl (installed by `make tools`) can be found.
func grpcurlPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("PATH")
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		path = filepath.Join(strings.TrimSpace(string(out)), "bin") + string(os.PathListSeparator) + path
	}
	t.Setenv("PATH", path)
	if _, err := exec.LookPath("grpcurl"); err != nil {
		t.Fatalf("grpcurl not found: run `make tools`")
	}
	return path
}

// TestReadmeCommandsWork runs the README's grpcurl and curl lines against a
// real dev-mode server, exactly as written but for the ports.
func TestReadmeCommandsWork(t *testing.T) {
	grpcurlPath(t)
	p := startServe(t, buildBinary(t), nil, "--dev")
	lines := readmeCommands(t)
	if len(lines) < 10 {
		t.Fatalf("found %d server commands in README.md, want the examples", len(lines))
	}
	script := "set -e\n"
	for _, l := range lines {
		l = strings.ReplaceAll(l, "localhost:9090", p.grpcAddr)
		l = strings.ReplaceAll(l, "localhost:8000", p.httpAddr)
		script += "echo '>>> step'\n" + l + "\necho\n"
	}
	out, err := exec.Command("bash", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("README commands failed: %v\n%s", err, out)
	}
	steps := strings.Split(string(out), ">>> step\n")[1:]
	if len(steps) != len(lines) {
		t.Fatalf("ran %d steps, want %d:\n%s", len(steps), len(lines), out)
	}
	// A line's distinctive words -> what its output must show; the first
	// match counts, so longer paths come before their prefixes.
	want := []struct{ key, want string }{
		{"users/mallory/disconnect", `"connections":0`},
		{"bans -H", `"reason":"spam"`},
		{"bans/mallory", `"user":"mallory"`},
		{"websocket/bans", `"total_bans":1`},
		{"AdminService/KickUser", `"user": "mallory"`},
		{"list", "chat.v1.ChatService"},
		{"Health/Check", `"status": "SERVING"`},
		{"ChatService/GetStats", "{"},
		{"/health", `"status":"healthy"`},
		{"websocket/stats", `"total_connections":`},
		{"/members", `"total_members":`},
		{"/history?", `"message":"hola"`},
		{"websocket/rooms", `"total_rooms":`},
		{"websocket/users", `"connected_users":`},
		{"test-token?username", `"access_token":`},
		{"ChatService/Connect", `"message": "hola"`},
		{"broadcast?message", `"recipients":`},
		{"ChatService/Broadcast", `"message": "Message sent to room general"`},
	}
	for i, l := range lines {
		for _, w := range want {
			if strings.Contains(l, w.key) {
				if !strings.Contains(steps[i], w.want) {
					t.Errorf("README line\n  %s\nprinted\n  %s\nwant it to contain %s", l, steps[i], w.want)
				}
				break
			}
		}
		if strings.TrimSpace(steps[i]) == "" && !strings.HasPrefix(l, "TOKEN=") && !strings.HasPrefix(l, "ADMIN=") {
			t.Errorf("README line %q printed nothing", l)
		}
	}
}
