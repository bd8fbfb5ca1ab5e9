package ticket

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/jira"
	"github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
)

// This file is the start check (see connector.CheckVendor): before taking requests the connector
// asks the vendor, with its own credentials, whether the configuration works. Its calls go
// through a route of their own, <vendor>.check, so they neither count in nor trip the breakers
// and alerts of search, create and comment.

// checkSettings: the check's route tries twice (a 5xx or timeout on the first try is retried
// once, then the start goes on with a warning).
var checkSettings = func() resilience.Settings {
	s := ticketSettings
	s.MaxAttempts = 2
	return s
}()

// checkRoute builds the start check's route of vendor.
func checkRoute(reg *resilience.Registry, vendor string) (*resilience.Route, error) {
	return reg.Route(resilience.RouteSpec{Vendor: vendor, Op: "check", Idempotent: true, Settings: checkSettings})
}

// checkCall is the Call of the start check's calls (audit records).
var checkCall = resilience.Call{Key: "start check"}

// check verifies the Jira configuration: GET /rest/api/3/myself authenticates JIRA_EMAIL and
// JIRA_API_TOKEN (401/403: refused), GET /rest/api/3/project/{JIRA_PROJECT_KEY} finds the project
// (404: no such project, or the account may not browse it) and its issue types include
// JIRA_ISSUE_TYPE. A TICKET_ROUTES department that is not one of the project's components is
// only a warning: its tickets are created unrouted.
func (p *jiraProvider) check(ctx context.Context) error {
	var me jira.Myself
	err := p.do(ctx, p.routes.check, checkCall, http.MethodGet, jira.PathMyself, nil, func(b []byte) (err error) {
		me, err = jira.ParseMyself(b)
		return err
	})
	if refused := jiraRefusal(err); refused != nil {
		switch refused.Status {
		case http.StatusUnauthorized, http.StatusForbidden:
			return connector.Misconfigured("JIRA_EMAIL/JIRA_API_TOKEN refused by %s (JIRA_EMAIL=%s): %w; check the Atlassian account email and its API token",
				p.cfg.JiraBaseURL+jira.PathMyself, p.cfg.JiraEmail, err)
		case http.StatusNotFound:
			return connector.Misconfigured("JIRA_BASE_URL=%s: %s answered 404: not a Jira Cloud site (want https://<site>.atlassian.net)",
				p.cfg.JiraBaseURL, jira.PathMyself)
		}
		return connector.Misconfigured("%s: %w", jira.PathMyself, err)
	}
	if err != nil {
		return err
	}
	if !me.Active {
		return connector.Misconfigured("JIRA_EMAIL=%s: the Atlassian account %s is deactivated", p.cfg.JiraEmail, me.AccountID)
	}
	var proj jira.Project
	err = p.do(ctx, p.routes.check, checkCall, http.MethodGet, jira.ProjectPath(p.cfg.JiraProjectKey), nil, func(b []byte) (err error) {
		proj, err = jira.ParseProject(b)
		return err
	})
	if refused := jiraRefusal(err); refused != nil {
		if refused.Status == http.StatusNotFound {
			return connector.Misconfigured("JIRA_PROJECT_KEY=%s: %w (or JIRA_EMAIL's account may not browse it)", p.cfg.JiraProjectKey, err)
		}
		return connector.Misconfigured("JIRA_PROJECT_KEY=%s: %w", p.cfg.JiraProjectKey, err)
	}
	if err != nil {
		return err
	}
	var types, components []string
	for _, t := range proj.IssueTypes {
		if !t.Subtask {
			types = append(types, t.Name)
		}
	}
	if !slices.Contains(types, p.cfg.JiraIssueType) {
		return connector.Misconfigured("JIRA_ISSUE_TYPE=%s: project %s has no such issue type%s; it has %s",
			p.cfg.JiraIssueType, proj.Key, config.DidYouMean(p.cfg.JiraIssueType, types), strings.Join(types, ", "))
	}
	for _, c := range proj.Components {
		components = append(components, c.Name)
	}
	for _, dept := range missingDepartments(p.cfg, components) {
		p.log.Warn("Jira project "+proj.Key+" has no component "+dept+" (TICKET_ROUTES): its tickets are created unrouted"+
			config.DidYouMean(dept, components), "component", dept, "variable", "TICKET_ROUTES")
	}
	return nil
}

// jiraRefusal returns Jira's refusal in err: a 4xx other than 429 (nil for none).
func jiraRefusal(err error) *jira.Error {
	var je *jira.Error
	if errors.As(err, &je) && je.Status >= 400 && je.Status < 500 && je.Status != http.StatusTooManyRequests && je.Status != http.StatusRequestTimeout {
		return je
	}
	return nil
}

// missingDepartments lists the TICKET_ROUTES departments not in known, sorted.
func missingDepartments(cfg Config, known []string) []string {
	var out []string
	for _, d := range cfg.routes {
		if !slices.Contains(known, d) && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// check verifies the Zendesk configuration: GET /api/v2/users/me.json with ZENDESK_EMAIL and
// ZENDESK_API_TOKEN. Zendesk answers credentials it does not accept with the anonymous user
// (200, id null), or 401; a 404 means ZENDESK_SUBDOMAIN (or ZENDESK_API_BASE) names no account;
// an end user (not an agent) cannot create tickets for others.
func (p *zendeskProvider) check(ctx context.Context) error {
	var me zendesk.User
	err := p.do(ctx, p.routes.check, checkCall, http.MethodGet, zendesk.PathMe, nil, func(b []byte) (err error) {
		me, err = zendesk.ParseMe(b)
		return err
	})
	var ze *zendesk.Error
	if errors.As(err, &ze) && ze.Status >= 400 && ze.Status < 500 && ze.Status != http.StatusTooManyRequests && ze.Status != http.StatusRequestTimeout {
		if ze.Status == http.StatusNotFound {
			return connector.Misconfigured("ZENDESK_SUBDOMAIN/ZENDESK_API_BASE (%s): %s answered 404: no Zendesk account there", p.cfg.ZendeskAPIBase, zendesk.PathMe)
		}
		return connector.Misconfigured("ZENDESK_EMAIL/ZENDESK_API_TOKEN refused by %s (ZENDESK_EMAIL=%s): %w; check the agent's email and the API token (Admin Center > Apps and integrations > Zendesk API)",
			p.cfg.ZendeskAPIBase, p.cfg.ZendeskEmail, err)
	}
	if err != nil {
		return err
	}
	switch {
	case me.Anonymous():
		return connector.Misconfigured("ZENDESK_EMAIL/ZENDESK_API_TOKEN refused by %s (ZENDESK_EMAIL=%s): users/me answered the anonymous user; check the agent's email, the API token and that token access is enabled",
			p.cfg.ZendeskAPIBase, p.cfg.ZendeskEmail)
	case me.Role == "end-user":
		return connector.Misconfigured("ZENDESK_EMAIL=%s is an end user of the account, not an agent: tickets need an agent's API token", p.cfg.ZendeskEmail)
	case !me.Active:
		return connector.Misconfigured("ZENDESK_EMAIL=%s: the agent is suspended or deleted", p.cfg.ZendeskEmail)
	}
	return nil
}

// checkVendor runs the provider's start check.
func (c *Connector) checkVendor(ctx context.Context) error {
	return connector.CheckVendor(ctx, c.rt, c.prov.Name(), c.prov.check)
}
