package desk_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// TestAPILimitedPerToken: one token past RATE_API_TOKEN_BURST is answered 429 with Retry-After
// while another agent's token still works; a body over the API's cap is answered 413.
func TestAPILimitedPerToken(t *testing.T) {
	t.Parallel()
	b := bustest.New(t)
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false", "RATE_API_TOKEN": "1/h", "RATE_API_TOKEN_BURST": "5"})
	for i := range 5 {
		if code := d.call(t, d.token, "GET", "/api/me", nil, nil); code != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, code)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, d.url+"/api/conversations", nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("past the burst: %s, Retry-After %q; want 429 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	if code := d.call(t, d.super, "GET", "/api/me", nil, nil); code != http.StatusOK {
		t.Fatalf("another agent's token: %d", code)
	}
	if code := d.call(t, "", "GET", "/api/me", nil, nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401 (the limit applies to verified tokens)", code)
	}
	// The supervisor's bucket: 1 spent above, this PUT is the 2nd.
	big := map[string]any{"name": strings.Repeat("x", 100<<10)}
	if code := d.call(t, d.super, "PUT", "/api/agents/supervisor-wang", big, nil); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 100 KiB body: %d, want 413", code)
	}
}
