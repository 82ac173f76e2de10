package load

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"time"
)

// startProfile asks the server's pprof endpoint (Config.ProfileURL, such as
// http://127.0.0.1:6060/debug/pprof/profile) for a CPU profile of the next
// d and saves it in Config.ProfileOut. The returned function waits for it;
// a failure is reported on Progress, not fatal to the run.
func (r *runner) startProfile(ctx context.Context, d time.Duration) (wait func()) {
	if r.cfg.ProfileURL == "" || r.cfg.ProfileOut == "" {
		return func() {}
	}
	if err := checkLoopbackURL(r.cfg.ProfileURL, r.cfg.AllowRemote); err != nil {
		fmt.Fprintf(r.cfg.Progress, "profile: %v\n", err)
		return func() {}
	}
	secs := int(math.Ceil(d.Seconds()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fetchProfile(ctx, fmt.Sprintf("%s?seconds=%d", r.cfg.ProfileURL, secs), r.cfg.ProfileOut, time.Duration(secs)*time.Second+30*time.Second); err != nil {
			fmt.Fprintf(r.cfg.Progress, "profile: %v\n", err)
		}
	}()
	return func() { <-done }
}

func fetchProfile(ctx context.Context, url, out string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("save profile: %w", err)
	}
	return f.Close()
}
