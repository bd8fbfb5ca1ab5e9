package wechatkf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/token"
	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

// client calls the WeCom kf API, every call through its pkg/resilience route (wecom.gettoken,
// wecom.sync_msg, wecom.send_msg: one audit record per call on omni.audit.wechatkf,
// omnibus_vendor_* metrics), with a cached access_token: a token the API rejects (40014 invalid,
// 42001 expired, 40001) is dropped and the call is made once more with a fresh one — a second
// call, with its own record.
type client struct {
	base, corpID, secret string
	http                 *http.Client
	tokens               *token.Cache
	log                  *slog.Logger
	gettoken, sync, send *resilience.Route
	// check is the start check's route (check.go): gettoken on a route of its own.
	check *resilience.Route
}

// wecomSettings: WeCom answers in ~100ms, but a sync_msg page of 1000 messages is large; an
// attempt gets 5s within the caller's budget (a callback's pull has 3s, so there the budget
// decides), 10s in all for a call whose caller set no deadline. Operators override any figure per
// route with RESILIENCE_WECOM_<GETTOKEN|SYNC_MSG|SEND_MSG>_*.
var wecomSettings = resilience.Settings{Timeout: 5 * time.Second, Budget: 10 * time.Second}

// The routes. gettoken and sync_msg are reads (sync_msg from a cursor: asking twice returns the
// same page) and are retried; send_msg is not idempotent (WeCom does not dedupe msgid) and is
// never retried once the request may have reached WeCom.
var (
	getTokenSpec = resilience.RouteSpec{Vendor: "wecom", Op: "gettoken", Idempotent: true, Settings: wecomSettings, Classify: classify}
	syncMsgSpec  = resilience.RouteSpec{Vendor: "wecom", Op: "sync_msg", Idempotent: true, Settings: wecomSettings, Classify: classify}
	sendMsgSpec  = resilience.RouteSpec{Vendor: "wecom", Op: "send_msg", Settings: wecomSettings, Classify: classify}
	checkSpec    = resilience.RouteSpec{Vendor: "wecom", Op: "check", Idempotent: true, Settings: wecomSettings, Classify: classify}
)

// codeMalformed is the code an attempt reports for a 200 answer that is not WeCom's shape.
const codeMalformed = "malformed"

// classify maps an answer to the pipeline's classes. WeCom itself always answers HTTP 200 with an
// errcode: another status is a gateway or proxy failing (transient; 429 a rate limit). errcode 0
// is success; -1 (system busy) and an unreadable answer are transient, 45009 the rate limit; any
// other errcode is a refusal, never retried by the pipeline — the rejected-token codes included,
// which the client answers with a fresh token and a second call.
func classify(status int, code string) resilience.Class {
	if status != http.StatusOK {
		if status == http.StatusTooManyRequests {
			return resilience.ClassRateLimited
		}
		return resilience.ClassRetryable
	}
	switch code {
	case "", "0":
		return resilience.ClassSuccess
	case strconv.Itoa(wecom.CodeSystemBusy), codeMalformed:
		return resilience.ClassRetryable
	case strconv.Itoa(wecom.CodeRateLimited):
		return resilience.ClassRateLimited
	}
	return resilience.ClassPermanent
}

// errAccessToken is wrapped when no access_token could be had (gettoken failed: WeCom down, or
// WECHATKF_CORP_ID/WECHATKF_SECRET wrong). It says nothing about the call itself, which callers
// therefore treat as transient whatever gettoken's errcode.
var errAccessToken = errors.New("no access_token")

func newClient(cfg *Config, reg *resilience.Registry, log *slog.Logger) (*client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16
	c := &client{base: cfg.APIBase, corpID: cfg.CorpID, secret: cfg.Secret, http: &http.Client{Transport: tr}, log: log}
	for _, r := range []struct {
		dst  **resilience.Route
		spec resilience.RouteSpec
	}{{&c.gettoken, getTokenSpec}, {&c.sync, syncMsgSpec}, {&c.send, sendMsgSpec}, {&c.check, checkSpec}} {
		rt, err := reg.Route(r.spec)
		if err != nil {
			return nil, err
		}
		*r.dst = rt
	}
	tokens, err := token.New(c.fetchToken, token.WithFetchTimeout(c.gettoken.Settings().Budget))
	if err != nil {
		return nil, err
	}
	c.tokens = tokens
	return c, nil
}

// fetchToken is the token cache's fetcher: GET /cgi-bin/gettoken.
func (c *client) fetchToken(ctx context.Context, corpID string) (token.Token, error) {
	return c.requestToken(ctx, c.gettoken, corpID)
}

// requestToken calls GET /cgi-bin/gettoken through route rt (gettoken, or the start check's).
func (c *client) requestToken(ctx context.Context, rt *resilience.Route, corpID string) (token.Token, error) {
	u := c.base + wecom.PathGetToken + "?" + url.Values{"corpid": {corpID}, "corpsecret": {c.secret}}.Encode()
	out, err := resilience.Do(ctx, rt, resilience.Call{Key: corpID}, func(ctx context.Context, a *resilience.Attempt) (wecom.TokenResponse, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return wecom.TokenResponse{}, bus.Permanent(err)
		}
		var out wecom.TokenResponse
		body, err := c.exchange(a, req, &out)
		if err != nil {
			return out, err
		}
		if out.AccessToken == "" || out.ExpiresIn <= 0 {
			a.Response(http.StatusOK, codeMalformed, body)
			return out, errors.New("answer without access_token or expires_in")
		}
		return out, nil
	})
	if err != nil {
		return token.Token{}, callError("gettoken", err)
	}
	return token.Token{Value: out.AccessToken, TTL: time.Duration(out.ExpiresIn) * time.Second}, nil
}

// exchange sends one attempt's request, reports it and the answer on a and decodes the answer
// into out. Errors: *wecom.Error (errcode != 0), a non-200 status (WeCom itself always answers
// 200 with an errcode: this is a gateway or proxy failing), an answer that is not JSON, transport
// failures (with the URL's query — the access_token, the secret — cut from their text).
func (c *client) exchange(a *resilience.Attempt, req *http.Request, out apiAnswer) ([]byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, withoutQuery(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		a.Response(resp.StatusCode, "", body)
		if d, ok := resilience.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			a.RetryAfter(d)
		}
		return body, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, out); err != nil {
		a.Response(resp.StatusCode, codeMalformed, body)
		return body, fmt.Errorf("answer is not JSON: %w", err)
	}
	err = out.Err()
	code := "0"
	var we *wecom.Error
	if errors.As(err, &we) {
		code = strconv.Itoa(we.Code)
	}
	a.Response(resp.StatusCode, code, body)
	return body, err
}

// withoutQuery cuts the query (access_token, corpsecret) from the URL a transport error names.
func withoutQuery(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	if i := strings.IndexByte(ue.URL, '?'); i >= 0 {
		ue.URL = ue.URL[:i]
	}
	return err
}

// callError is a failed call as the connector's callers see it: "wecom <op>: " and the vendor's
// errcode when it gave one (a *wecom.Error), else the pipeline's *resilience.Error (timeout,
// transport, breaker open, ...). It is never marked Permanent: what a failed call means for a
// message or a pull is the caller's decision (a refused send becomes a failed status; anything
// else is retried).
func callError(op string, err error) error {
	var we *wecom.Error
	switch {
	case errors.As(err, &we):
		return fmt.Errorf("wecom %s: %w", op, we)
	case bus.IsPermanent(err):
		return errors.New(err.Error()) // a request that could not be built: the text says it all
	}
	return err
}

type apiAnswer interface{ Err() error }

// post calls a token-authenticated API through rt. Errors wrap a *wecom.Error (errcode != 0) or
// errAccessToken, or are the pipeline's *resilience.Error (non-200 answers, transport failures,
// timeouts, breaker open, ...); see callError.
func (c *client) post(ctx context.Context, rt *resilience.Route, call resilience.Call, op, path string, body any, out apiAnswer) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.tokens.Get(ctx, c.corpID)
		if err != nil {
			return fmt.Errorf("wecom %s: %w: %w", op, errAccessToken, err)
		}
		_, err = resilience.Do(ctx, rt, call, func(ctx context.Context, a *resilience.Attempt) (struct{}, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path+"?access_token="+url.QueryEscape(tok), bytes.NewReader(raw))
			if err != nil {
				return struct{}{}, bus.Permanent(err)
			}
			req.Header.Set("Content-Type", "application/json")
			a.Request(raw)
			_, err = c.exchange(a, req, out)
			return struct{}{}, err
		})
		var we *wecom.Error
		if attempt == 0 && errors.As(err, &we) && we.TokenRejected() {
			c.log.InfoContext(ctx, "wecom rejected the access_token; fetching a new one", "op", op, "errcode", we.Code)
			c.tokens.Reject(c.corpID, tok)
			continue
		}
		if err != nil {
			return callError(op, err)
		}
		return nil
	}
}

func (c *client) syncMsg(ctx context.Context, req wecom.SyncMsgRequest) (*wecom.SyncMsgResponse, error) {
	var out wecom.SyncMsgResponse
	if err := c.post(ctx, c.sync, resilience.Call{Key: req.OpenKfID}, "kf/sync_msg", wecom.PathSyncMsg, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// sendMsg sends a message for the command call.CorrelationID names.
func (c *client) sendMsg(ctx context.Context, call resilience.Call, req wecom.SendMsgRequest) (*wecom.SendMsgResponse, error) {
	var out wecom.SendMsgResponse
	if call.Key == "" {
		call.Key = req.ToUser
	}
	if err := c.post(ctx, c.send, call, "kf/send_msg", wecom.PathSendMsg, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
