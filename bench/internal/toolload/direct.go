package toolload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/wire/cainiao"
	"github.com/omnibus-dev/omnibus/pkg/wire/jira"
	omswire "github.com/omnibus-dev/omnibus/pkg/wire/oms"
	sfwire "github.com/omnibus-dev/omnibus/pkg/wire/salesforce"
	"github.com/omnibus-dev/omnibus/pkg/wire/sfexpress"
	"github.com/omnibus-dev/omnibus/pkg/wire/zendesk"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/ticket"
)

// direct makes the baseline's bare vendor calls: one HTTP request to the sandbox route the tool
// would call for the same kind of key, signed and shaped as the connector does, with no pipeline,
// no bus and no cache. Its error is the vendor's refusal or failure (or a transport error).
type direct struct {
	base           string
	hc             *http.Client
	ticketProvider string
	sfToken        string // Salesforce access token and instance, fetched once before the baseline
	sfInstance     string
	sfFields       []string
}

func newDirect(base, ticketProvider string) *direct {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &direct{base: base, hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}, ticketProvider: ticketProvider,
		sfFields: append(append([]string{}, sfwire.ContactFields...), "Member_Number__c", "VIP_Level__c")}
}

func cred(k string) string { return sandbox.Credentials[k] }

// call makes tool's bare call for k.
func (d *direct) call(ctx context.Context, tool string, k key) error {
	switch tool {
	case "crm":
		return d.salesforceQuery(ctx, k)
	case "oms":
		return d.omsLookup(ctx, k)
	case "logistics":
		if strings.HasPrefix(strings.ToUpper(k.Value), "SF") {
			return d.sfRoute(ctx, k.Value)
		}
		return d.cainiaoTrace(ctx, k.Value)
	default:
		if d.ticketProvider == "zendesk" {
			return d.zendeskCreate(ctx, k)
		}
		return d.jiraCreate(ctx, k)
	}
}

// prepare does what a tool's first call needs once (the Salesforce token), retrying through the
// sandbox's faults.
func (d *direct) prepare(ctx context.Context, tool string) error {
	if tool != "crm" || d.sfToken != "" {
		return nil
	}
	var last error
	for range 20 {
		if last = d.salesforceToken(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("baseline: salesforce token: %w", last)
}

func (d *direct) do(req *http.Request) (int, []byte, http.Header, error) {
	resp, err := d.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, body, resp.Header, err
}

func (d *direct) salesforceToken(ctx context.Context) error {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {cred("SALESFORCE_CLIENT_ID")},
		"client_secret": {cred("SALESFORCE_CLIENT_SECRET")}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/sandbox/salesforce"+sfwire.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	status, body, _, err := d.do(req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("salesforce token: HTTP %d", status)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || tok.InstanceURL == "" {
		return fmt.Errorf("salesforce token: unexpected answer %.200s", body)
	}
	d.sfToken, d.sfInstance = tok.AccessToken, strings.TrimRight(tok.InstanceURL, "/")
	return nil
}

func (d *direct) salesforceQuery(ctx context.Context, k key) error {
	soql, err := sfwire.ContactQuery(d.sfFields, k.Kind, k.Value, 5)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.sfInstance+sfwire.QueryPath("v60.0")+"?q="+url.QueryEscape(soql), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+d.sfToken)
	req.Header.Set("Accept", "application/json")
	status, body, _, err := d.do(req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return sfwire.ParseErrors(status, body)
	}
	_, err = sfwire.ParseQueryResponse(body)
	return err
}

func nonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *direct) omsLookup(ctx context.Context, k key) error {
	u := d.base + "/sandbox/oms" + omswire.PathOrders
	if k.Kind == "order_no" {
		u += "/" + url.PathEscape(k.Value)
	} else {
		u += "?" + url.Values{"mobile": {omswire.NationalMobile(k.Value)}, "page": {"1"}, "page_size": {"5"}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	omswire.SignRequest(req, cred("OMS_APP_KEY"), cred("OMS_APP_SECRET"), nil, time.Now(), nonce())
	status, body, h, err := d.do(req)
	if err != nil {
		return err
	}
	var out json.RawMessage
	err = omswire.ParseResponse(status, h, body, &out)
	var oe *omswire.Error
	if errors.As(err, &oe) && oe.Code == omswire.CodeOrderNotFound && k.Kind == "order_no" {
		return nil // an answer: no such order
	}
	return err
}

func (d *direct) sfRoute(ctx context.Context, no string) error {
	msg, err := json.Marshal(sfexpress.NewRouteQuery([]string{no}, ""))
	if err != nil {
		return err
	}
	r := sfexpress.NewRequest(cred("SF_PARTNER_ID"), cred("SF_CHECKWORD"), uuid.NewString(), sfexpress.ServiceRouteQuery, msg, time.Now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/sandbox/sfexpress"+sfexpress.Path, strings.NewReader(r.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", sfexpress.ContentType)
	status, body, _, err := d.do(req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("sfexpress: HTTP %d", status)
	}
	_, _, err = sfexpress.ParseRouteResponse(body)
	return err
}

func (d *direct) cainiaoTrace(ctx context.Context, no string) error {
	payload, err := json.Marshal(cainiao.TraceQuery{SupplierID: cred("CAINIAO_PROVIDER_ID"), MailNo: no, Type: cainiao.TypeOrigin})
	if err != nil {
		return err
	}
	r := cainiao.NewRequest(cred("CAINIAO_PROVIDER_ID"), cred("CAINIAO_SECRET_KEY"), cainiao.MsgTypeTraceQuery, "", payload)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base+"/sandbox/cainiao"+cainiao.Path, strings.NewReader(r.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", cainiao.ContentType)
	status, body, _, err := d.do(req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("cainiao: HTTP %d", status)
	}
	if _, err = cainiao.ParseTraceResponse(body); errors.Is(err, cainiao.ErrNotFound) {
		return nil // an answer: no such waybill
	}
	return err
}

func (d *direct) postJSON(ctx context.Context, u, auth string, v any) (int, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	status, body, _, err := d.do(req)
	return status, body, err
}

// jiraCreate creates the issue of a conversation the baseline alone uses (its own label, so the
// tool never finds the baseline's issues).
func (d *direct) jiraCreate(ctx context.Context, k key) error {
	desc := jira.Paragraphs(ticketDescription(k))
	f := jira.IssueFields{Project: jira.Ref{Key: "CS"}, IssueType: jira.Ref{Name: "Task"}, Summary: k.Subject, Description: &desc,
		Labels: []string{"omnibus", jira.LabelValue(ticket.LabelPrefix, k.Value), "bench"}}
	status, body, err := d.postJSON(ctx, d.base+"/sandbox/jira"+jira.PathIssue, jira.BasicAuth(cred("JIRA_EMAIL"), cred("JIRA_API_TOKEN")),
		jira.CreateIssueRequest{Fields: f})
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return jira.DecodeError(status, body)
	}
	_, err = jira.ParseCreated(body)
	return err
}

func (d *direct) zendeskCreate(ctx context.Context, k key) error {
	public := false
	nt := zendesk.NewTicket{Subject: k.Subject, Comment: zendesk.Comment{Body: ticketDescription(k), Public: &public}, Priority: k.Priority,
		Tags: []string{"omnibus", "bench"}, ExternalID: ticket.ExternalIDPrefix + k.Value}
	status, body, err := d.postJSON(ctx, d.base+"/sandbox/zendesk"+zendesk.PathTickets, zendesk.BasicAuth(cred("ZENDESK_EMAIL"), cred("ZENDESK_API_TOKEN")),
		zendesk.CreateRequest{Ticket: nt})
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return zendesk.DecodeError(status, body, "")
	}
	_, err = zendesk.ParseTicket(body)
	return err
}
