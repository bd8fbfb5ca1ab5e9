package ticket_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/pkg/connector/connectortest"
	"github.com/omnibus-dev/omnibus/pkg/service/servicetest"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/ticket"
)

// startWith starts the connector for provider against the sandbox with env over its
// configuration (SANDBOX in a value is the sandbox's URL) and faults injected first, until it serves (then stops it) or fails to start.
// It returns the start's error and the connector's log.
func startWith(t *testing.T, provider string, env map[string]string, faults map[string]sim.Fault) (error, string) { //nolint:revive,staticcheck // as servicetest.Start
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	senv, _, _, cfg := sandbox(t, mux, srv.URL, provider)
	for k, f := range faults {
		if err := senv.SetFault(k, f); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range env {
		cfg[k] = strings.Replace(v, "SANDBOX", srv.URL, 1)
	}
	return servicetest.Start(t, ticket.Service(), bustest.New(t, bus.WithLogger(quiet())).Client, mux, cfg)
}

// TestStartCheck: at start the connector asks the vendor whether its configuration works. Jira:
// GET /rest/api/3/myself and the project; Zendesk: GET /api/v2/users/me.json. Credentials the
// vendor refuses (Zendesk: the anonymous user), a project or issue type the site does not have
// stop the start with connector.ErrMisconfigured naming the variables; a vendor that does not
// answer (500s, the connection refused) only warns, and the connector starts.
func TestStartCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, provider string
		env            map[string]string
		want           []string // in the error
	}{
		{"jira token refused", "jira", map[string]string{"JIRA_API_TOKEN": "wrong"}, []string{"JIRA_EMAIL/JIRA_API_TOKEN refused", "jira 401"}},
		{"jira email refused", "jira", map[string]string{"JIRA_EMAIL": "someone@example.com"}, []string{"JIRA_EMAIL/JIRA_API_TOKEN refused", "JIRA_EMAIL=someone@example.com"}},
		{"jira project unknown", "jira", map[string]string{"JIRA_PROJECT_KEY": "SUP"}, []string{"JIRA_PROJECT_KEY=SUP", "No project could be found with key 'SUP'."}},
		{"jira issue type unknown", "jira", map[string]string{"JIRA_ISSUE_TYPE": "Tsak"}, []string{"JIRA_ISSUE_TYPE=Tsak", "did you mean Task?"}},
		{"jira base URL not a site", "jira", map[string]string{"JIRA_BASE_URL": "SANDBOX/sandbox/nothing"}, []string{"JIRA_BASE_URL=", "404"}},
		{"zendesk token refused", "zendesk", map[string]string{"ZENDESK_API_TOKEN": "wrong"}, []string{"ZENDESK_EMAIL/ZENDESK_API_TOKEN refused", "anonymous user"}},
		{"zendesk email refused", "zendesk", map[string]string{"ZENDESK_EMAIL": "someone@example.com"}, []string{"ZENDESK_EMAIL/ZENDESK_API_TOKEN refused", "ZENDESK_EMAIL=someone@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err, logs := startWith(t, tc.provider, tc.env, nil)
			connectortest.RequireRefused(t, err, logs, tc.want...)
		})
	}
	for _, provider := range []string{"jira", "zendesk"} {
		t.Run(provider+" good configuration", func(t *testing.T) {
			t.Parallel()
			err, logs := startWith(t, provider, nil, nil)
			connectortest.RequireAccepted(t, err, logs, provider)
		})
		t.Run(provider+" down", func(t *testing.T) {
			t.Parallel()
			err, logs := startWith(t, provider, nil, map[string]sim.Fault{provider + " *": {ErrorRatio: 1, Code: "503"}})
			connectortest.RequireUnchecked(t, err, logs, provider)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		l, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now: the connection is refused
		err, logs := startWith(t, "jira", map[string]string{"JIRA_BASE_URL": "http://" + addr}, nil)
		connectortest.RequireUnchecked(t, err, logs, "jira", "connection refused")
	})
	t.Run("jira component missing", func(t *testing.T) {
		t.Parallel()
		err, logs := startWith(t, "jira", map[string]string{"TICKET_ROUTES": "order=Orders,complaint=Complains"}, nil)
		if err != nil || !strings.Contains(logs, "has no component Complains (TICKET_ROUTES)") || !strings.Contains(logs, "did you mean Complaints?") {
			t.Fatalf("start: %v; want a start with a warning naming the component, logs:\n%s", err, logs)
		}
	})
}
