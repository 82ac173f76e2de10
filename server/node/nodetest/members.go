package nodetest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"

	client "github.com/tertulia/tertulia/clients/go"
)

// maxPages bounds a walk through a room's members.
const maxPages = 100

// MemberPages walks every page of room's members over gRPC with c (whose
// token outside dev mode must let it read the room), limit at a time, and
// returns the user ids of each page and the room's total.
func MemberPages(t testing.TB, c *client.Client, room string, limit int) (pages [][]string, total int) {
	t.Helper()
	cursor := ""
	for range maxPages {
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		resp, err := c.Members(ctx, room, limit, cursor)
		cancel()
		if err != nil {
			t.Fatalf("ListMembers(%q, %d, %q): %v", room, limit, cursor, err)
		}
		var ids []string
		for _, m := range resp.Members {
			ids = append(ids, m.UserId)
		}
		pages = append(pages, ids)
		if cursor = resp.NextCursor; cursor == "" {
			return pages, int(resp.TotalMembers)
		}
	}
	t.Fatalf("ListMembers(%q): more than %d pages", room, maxPages)
	return nil, 0
}

// RESTMember is one member as GET /api/v1/websocket/rooms/{room}/members shows it.
type RESTMember struct {
	UserID      string `json:"user_id"`
	Username    string `json:"username"`
	Connections int    `json:"connections"`
}

// RESTMembers is one page of GET /api/v1/websocket/rooms/{room}/members.
type RESTMembers struct {
	Room         string       `json:"room"`
	Members      []RESTMember `json:"members"`
	NextCursor   string       `json:"next_cursor"`
	TotalMembers int          `json:"total_members"`
}

// GetMembers fetches one page of room's members from the REST route of the
// node at base (http://host:port), presenting token (none if ""), and
// returns its status and body.
func GetMembers(t testing.TB, base, token, room string, query url.Values) (int, RESTMembers, map[string]any) {
	t.Helper()
	u := base + "/api/v1/websocket/rooms/" + url.PathEscape(room) + "/members"
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatalf("GET %s: status %d, body not JSON: %v", u, resp.StatusCode, err)
	}
	var page RESTMembers
	var body map[string]any
	if err := json.Unmarshal(raw, &page); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode, page, body
}

// RESTMemberPages walks every page of room's members over REST, presenting
// token, as MemberPages does over gRPC.
func RESTMemberPages(t testing.TB, base, token, room string, limit int) (pages [][]string, total int) {
	t.Helper()
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for range maxPages {
		code, page, _ := GetMembers(t, base, token, room, q)
		if code != http.StatusOK {
			t.Fatalf("GET members of %q (%v): status %d", room, q, code)
		}
		var ids []string
		for _, m := range page.Members {
			ids = append(ids, m.UserID)
		}
		pages = append(pages, ids)
		if page.NextCursor == "" {
			return pages, page.TotalMembers
		}
		q.Set("cursor", page.NextCursor)
	}
	t.Fatalf("GET members of %q: more than %d pages", room, maxPages)
	return nil, 0
}
