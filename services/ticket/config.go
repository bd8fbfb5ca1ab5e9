package ticket

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

// Config is read from the environment. Every field states its default.
type Config struct {
	Provider string `env:"TICKET_PROVIDER" default:"jira" desc:"the ticketing system: jira or zendesk"`

	JiraBaseURL       string `env:"JIRA_BASE_URL" enable:"true" desc:"Jira Cloud site, e.g. https://example.atlassian.net (omnibus sandbox: http://127.0.0.1:8080/sandbox/jira); required for jira"`
	JiraEmail         string `env:"JIRA_EMAIL" desc:"Atlassian account email of the API token; required for jira"`
	JiraAPIToken      string `env:"JIRA_API_TOKEN" enable:"true" desc:"Atlassian API token (Basic auth email:token); required for jira"`
	JiraProjectKey    string `env:"JIRA_PROJECT_KEY" default:"CS" desc:"project the issues are created in"`
	JiraIssueType     string `env:"JIRA_ISSUE_TYPE" default:"Task" desc:"issue type of created issues"`
	JiraWebhookSecret string `env:"JIRA_WEBHOOK_SECRET" desc:"secret of the Jira admin webhook (X-Hub-Signature); without it POST /hooks/ticket/jira refuses every call"`

	ZendeskSubdomain     string `env:"ZENDESK_SUBDOMAIN" enable:"true" desc:"Zendesk subdomain (https://<subdomain>.zendesk.com); ZENDESK_API_BASE overrides the URL"`
	ZendeskAPIBase       string `env:"ZENDESK_API_BASE" desc:"Zendesk API base (default https://<ZENDESK_SUBDOMAIN>.zendesk.com; omnibus sandbox: http://127.0.0.1:8080/sandbox/zendesk)"`
	ZendeskEmail         string `env:"ZENDESK_EMAIL" desc:"agent email of the API token; required for zendesk"`
	ZendeskAPIToken      string `env:"ZENDESK_API_TOKEN" enable:"true" desc:"Zendesk API token (Basic auth email/token:token); required for zendesk"`
	ZendeskWebhookSecret string `env:"ZENDESK_WEBHOOK_SECRET" desc:"signing secret of the Zendesk webhook; without it POST /hooks/ticket/zendesk refuses every call"`

	Budget         time.Duration `env:"TICKET_BUDGET" default:"8s" desc:"time one request may take, searches and reconciliation included; then it is answered with .failed"`
	ReconcileDelay time.Duration `env:"TICKET_RECONCILE_DELAY" default:"500ms" desc:"wait before searching for a ticket whose create had no clear answer; Jira's search index lags behind writes, and a Jira create is sent again when this search finds nothing, so raise it if your site's index is slower"`
	WebhookWindow  time.Duration `env:"TICKET_WEBHOOK_WINDOW" default:"5m" desc:"accepted clock skew of signed webhook timestamps (Zendesk)"`
	Concurrency    int           `env:"TICKET_CONCURRENCY" default:"64" desc:"requests handled at once (requests of one conversation are serialised); a request mostly waits on the vendor (and up to TICKET_RECONCILE_DELAY after an ambiguous create), the routes' rate limits bound the calls"`
	Routes         string        `env:"TICKET_ROUTES" default:"order=Orders,logistics=Logistics,payment=Payments,account=Accounts,complaint=Complaints" desc:"departments by business type (按业务类型分配), business_type=department pairs separated by commas (order, logistics, payment, account, complaint, other): a request's business_type (set by assist's automatic tickets) routes its ticket to that Jira component or Zendesk group (by name, looked up in the account's groups; a number is a group id). A type not listed, or a request without one, is not routed. A Jira project without the component, or a Zendesk account without the group, gets the ticket unrouted and a warning in the log"`
	MaxDeliver     int           `env:"TICKET_MAX_DELIVER" default:"4" desc:"deliveries of one request: a transient failure (vendor 5xx or timeout after the retries, outcome unknown, local throttling) is redelivered after 1s, 2s, 4s; the last delivery answers .failed"`

	routes map[string]string // parsed Routes: business type → department
}

// BusinessTypes are the business types TICKET_ROUTES may name (tool.defs.json businessType).
var BusinessTypes = []string{"order", "logistics", "payment", "account", "complaint", "other"}

// Department returns the department a business type is routed to ("" when none).
func (c *Config) Department(businessType string) string { return c.routes[businessType] }

// parseRoutes reads TICKET_ROUTES.
func parseRoutes(spec string) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, pair := range strings.Split(spec, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch {
		case !ok || v == "":
			errs = append(errs, fmt.Errorf("TICKET_ROUTES: %q is not business_type=department", pair))
		case !slices.Contains(BusinessTypes, k):
			errs = append(errs, fmt.Errorf("TICKET_ROUTES: unknown business type %q, want one of %s%s", k, strings.Join(BusinessTypes, ", "),
				config.DidYouMean(k, BusinessTypes)))
		case len(v) > 255:
			errs = append(errs, fmt.Errorf("TICKET_ROUTES: department of %s longer than 255 bytes", k))
		case out[k] != "":
			errs = append(errs, fmt.Errorf("TICKET_ROUTES: %s is routed twice", k))
		default:
			out[k] = v
		}
	}
	return out, errors.Join(errs...)
}

// Providers.
const (
	ProviderJira    = "jira"
	ProviderZendesk = "zendesk"
)

// Validate checks the configuration.
func (c *Config) Validate() error {
	c.Provider = strings.ToLower(strings.TrimSpace(c.Provider))
	var errs []error
	switch c.Provider {
	case ProviderJira:
		if c.JiraBaseURL == "" || c.JiraEmail == "" || c.JiraAPIToken == "" {
			errs = append(errs, errors.New("TICKET_PROVIDER=jira needs JIRA_BASE_URL, JIRA_EMAIL and JIRA_API_TOKEN"))
		}
		if strings.ContainsAny(c.JiraProjectKey, " \"") || c.JiraProjectKey == "" {
			errs = append(errs, fmt.Errorf("JIRA_PROJECT_KEY=%q: want a project key such as CS", c.JiraProjectKey))
		}
	case ProviderZendesk:
		if c.ZendeskAPIBase == "" && c.ZendeskSubdomain != "" {
			c.ZendeskAPIBase = "https://" + c.ZendeskSubdomain + ".zendesk.com"
		}
		if c.ZendeskAPIBase == "" || c.ZendeskEmail == "" || c.ZendeskAPIToken == "" {
			errs = append(errs, errors.New("TICKET_PROVIDER=zendesk needs ZENDESK_SUBDOMAIN (or ZENDESK_API_BASE), ZENDESK_EMAIL and ZENDESK_API_TOKEN"))
		}
	default:
		errs = append(errs, fmt.Errorf("TICKET_PROVIDER=%q: want jira or zendesk%s", c.Provider,
			config.DidYouMean(c.Provider, []string{ProviderJira, ProviderZendesk})))
	}
	for _, u := range []struct{ name, v string }{{"JIRA_BASE_URL", c.JiraBaseURL}, {"ZENDESK_API_BASE", c.ZendeskAPIBase}} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s=%q: want an http(s) URL", u.name, u.v))
		}
	}
	c.JiraBaseURL = strings.TrimRight(c.JiraBaseURL, "/")
	c.ZendeskAPIBase = strings.TrimRight(c.ZendeskAPIBase, "/")
	switch {
	case c.Budget <= 0:
		errs = append(errs, fmt.Errorf("TICKET_BUDGET (%s) must be > 0", c.Budget))
	case c.ReconcileDelay < 0 || c.ReconcileDelay >= c.Budget:
		errs = append(errs, fmt.Errorf("TICKET_RECONCILE_DELAY (%s) must be >= 0 and below TICKET_BUDGET", c.ReconcileDelay))
	}
	if c.WebhookWindow <= 0 || c.Concurrency < 1 {
		errs = append(errs, errors.New("TICKET_WEBHOOK_WINDOW must be > 0 and TICKET_CONCURRENCY >= 1"))
	}
	routes, err := parseRoutes(c.Routes)
	if err != nil {
		errs = append(errs, err)
	}
	c.routes = routes
	if c.MaxDeliver < 1 || c.MaxDeliver > 20 {
		errs = append(errs, fmt.Errorf("TICKET_MAX_DELIVER (%d) must be between 1 and 20", c.MaxDeliver))
	}
	return errors.Join(errs...)
}
