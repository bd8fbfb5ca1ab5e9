package ticket_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	sbzendesk "github.com/omnibus-dev/omnibus/services/sandbox/zendesk"
	"github.com/omnibus-dev/omnibus/services/ticket"
)

// TestRoutesByBusinessType: a request's business_type routes its ticket to the TICKET_ROUTES
// department — a Jira component, a Zendesk group looked up by name — and a department the vendor
// does not know, or a type not routed, leaves the ticket unrouted rather than lost.
func TestRoutesByBusinessType(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, provider, biz string
		extra               map[string]string
		component           string // Jira
		group               int64  // Zendesk
	}{
		{name: "jira order", provider: "jira", biz: "order", component: "Orders"},
		{name: "jira logistics", provider: "jira", biz: "logistics", component: "Logistics"},
		{name: "jira other is not routed", provider: "jira", biz: "other"},
		{name: "jira no business type", provider: "jira"},
		{name: "jira unknown component", provider: "jira", biz: "order", extra: map[string]string{"TICKET_ROUTES": "order=Refunds"}},
		{name: "zendesk complaint", provider: "zendesk", biz: "complaint", group: sbzendesk.DefaultGroups["Complaints"]},
		{name: "zendesk payment", provider: "zendesk", biz: "payment", group: sbzendesk.DefaultGroups["Payments"]},
		{name: "zendesk group id", provider: "zendesk", biz: "account", extra: map[string]string{"TICKET_ROUTES": "account=360000101"},
			group: 360000101},
		{name: "zendesk unknown group", provider: "zendesk", biz: "order", extra: map[string]string{"TICKET_ROUTES": "order=Refunds"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, tc.provider, tc.extra)
			req := map[string]any{"conversation_id": uuid.NewString(), "subject": "[自动] 订单 SO2612070123456789：退款", "tags": []string{"auto"}}
			if tc.biz != "" {
				req["business_type"] = tc.biz
			}
			e := tb.publish(t, ticket.TypeCreateRequested, req)
			if a := tb.answer(t, "omni.tool.ticket.create.*", e.ID()); a.Type() != ticket.TypeCreateCompleted {
				t.Fatalf("%s %s", a.Type(), a.Data())
			}
			if tc.provider == "jira" {
				is := tb.jira.Issues()
				var want []string
				if tc.component != "" {
					want = []string{tc.component}
				}
				if len(is) != 1 || !slices.Equal(is[0].Components, want) {
					t.Fatalf("issues %+v, want component %q", is, tc.component)
				}
				return
			}
			tk := tb.zd.Tickets()
			if len(tk) != 1 || (tc.group == 0) != (tk[0].GroupID == nil) || (tc.group != 0 && *tk[0].GroupID != tc.group) {
				t.Fatalf("tickets %+v, want group %d", tk, tc.group)
			}
		})
	}
}

// TestRoutesConfig: TICKET_ROUTES names business types, with "did you mean".
func TestRoutesConfig(t *testing.T) {
	t.Parallel()
	for spec, want := range map[string]string{
		"oder=Orders":           "did you mean order?",
		"order":                 "not business_type=department",
		"order=A,order=B":       "routed twice",
		"order=Orders,payment=": "not business_type=department",
	} {
		cfg := ticket.Config{Provider: "jira", JiraBaseURL: "https://x.atlassian.net", JiraEmail: "a@b.c", JiraAPIToken: "t", JiraProjectKey: "CS",
			Budget: 8e9, ReconcileDelay: 1, WebhookWindow: 1, Concurrency: 1, MaxDeliver: 4, Routes: spec}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", spec, err, want)
		}
	}
	cfg := ticket.Config{Provider: "jira", JiraBaseURL: "https://x.atlassian.net", JiraEmail: "a@b.c", JiraAPIToken: "t", JiraProjectKey: "CS",
		Budget: 8e9, ReconcileDelay: 1, WebhookWindow: 1, Concurrency: 1, MaxDeliver: 4, Routes: " Logistics = 物流部 ,complaint=Complaints"}
	if err := cfg.Validate(); err != nil || cfg.Department("logistics") != "物流部" || cfg.Department("order") != "" {
		t.Fatalf("%v %q", err, cfg.Department("logistics"))
	}
}
