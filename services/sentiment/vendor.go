package sentiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	aliwire "github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	tcwire "github.com/omnibus-dev/omnibus/pkg/wire/tencent"
)

// This file is the connector's seam to the vendors: one resilience route per vendor and one
// attempt of its sentiment API.

// vendorScore is what a vendor said of a text.
type vendorScore struct {
	Label      string  // positive | neutral | negative
	Score      float64 // P(positive) - P(negative), in [-1, 1]
	Confidence float64 // the probability of Label
	RequestID  string
}

// scorer is one vendor's sentiment API.
type scorer interface {
	// route is the vendor's resilience route.
	route(cfg Config) resilience.RouteSpec
	// score makes one attempt for text and reports it on a. Errors: *VendorError for an error
	// answer, wrapped ErrMalformed... of pkg/wire for an answer that is not the documented shape,
	// transport errors, bus.Permanent for a request that cannot be built.
	score(ctx context.Context, a *resilience.Attempt, text string) (vendorScore, error)
	// model and version name the API in the provenance.
	model() (model, version string)
}

// VendorError is a vendor's error answer.
type VendorError struct {
	Status  int
	Code    string
	Message string
}

func (e *VendorError) Error() string {
	return fmt.Sprintf("vendor answered %d %s: %s", e.Status, e.Code, e.Message)
}

// codeMalformed is the code an attempt reports for a 200 it cannot read.
const codeMalformed = "malformed"

// settings are the routes' figures: a sentiment call must fit one message's budget (300 ms by
// default), so attempts are short and retries few. The calls have no effect at the vendor: the
// routes are idempotent. Operators override any figure with RESILIENCE_<VENDOR>_SENTIMENT_*.
var settings = resilience.Settings{Timeout: 200 * time.Millisecond, Budget: 300 * time.Millisecond, MaxAttempts: 3,
	Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxConcurrent: 64, MaxWait: 50 * time.Millisecond}

// settingsFor are the settings within cfg's budget.
func settingsFor(cfg Config) resilience.Settings {
	s := settings
	s.Budget = cfg.Budget
	s.Timeout = min(s.Timeout, cfg.Budget)
	return s
}

// labelScore turns class probabilities into a polarity and the label's probability.
func labelScore(label string, pos, neg, neutral float64) vendorScore {
	s := max(-1, min(1, pos-neg))
	conf := neutral
	switch label {
	case "positive":
		conf = pos
	case "negative":
		conf = neg
	}
	return vendorScore{Label: label, Score: s, Confidence: max(0, min(1, conf))}
}

// cut returns the first n characters of s and whether it was cut.
func cut(s string, n int) (string, bool) {
	i := 0
	for j := range s {
		if i == n {
			return s[:j], true
		}
		i++
	}
	return s, false
}

// send makes req and reads the answer (at most resilience.MaxResponseBody bytes).
func send(client *http.Client, req *http.Request) (status int, raw []byte, err error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(resp.Body, resilience.MaxResponseBody))
	return resp.StatusCode, raw, err
}

// snippet is the start of an answer that is not the vendor's error shape, for the error message.
func snippet(raw []byte) string { return strings.TrimSpace(string(raw[:min(len(raw), 200)])) }

// ---- Tencent Cloud NLP AnalyzeSentiment (TC3-HMAC-SHA256) ----

type tencentScorer struct {
	http   *http.Client
	url    string
	region string
	signer tcwire.Signer
	now    func() time.Time
}

// tencentCodes classifies API 3.0 error codes (answered with HTTP 200): the product's transient
// failures and the gateway's throttling are retried, anything else (credentials, parameters)
// is a refusal.
var tencentCodes = resilience.Codes{
	"":                               resilience.ClassSuccess,
	"FailedOperation.RequestTimeout": resilience.ClassRetryable,
	"FailedOperation.ResourceBusy":   resilience.ClassRetryable,
	"FailedOperation.RpcFail":        resilience.ClassRetryable,
	"InternalError":                  resilience.ClassRetryable,
	"InternalError.ServiceError":     resilience.ClassRetryable,
	"RequestLimitExceeded":           resilience.ClassRateLimited,
	codeMalformed:                    resilience.ClassRetryable,
}

func (s *tencentScorer) route(cfg Config) resilience.RouteSpec {
	return resilience.RouteSpec{Vendor: "tencent", Op: "sentiment", Idempotent: true, Settings: settingsFor(cfg), Codes: tencentCodes,
		UnknownCode: resilience.ClassPermanent}
}

func (s *tencentScorer) model() (string, string) {
	return tcwire.NLPService + "/" + tcwire.ActionAnalyzeSentiment, tcwire.NLPVersion
}

func (s *tencentScorer) score(ctx context.Context, a *resilience.Attempt, text string) (vendorScore, error) {
	body, err := json.Marshal(tcwire.AnalyzeSentimentRequest{Text: text})
	if err != nil {
		return vendorScore{}, bus.Permanent(err)
	}
	a.Request(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/", bytes.NewReader(body))
	if err != nil {
		return vendorScore{}, bus.Permanent(err)
	}
	req.Header.Set("Content-Type", tcwire.ContentType)
	req.Header.Set(tcwire.HeaderAction, tcwire.ActionAnalyzeSentiment)
	req.Header.Set(tcwire.HeaderVersion, tcwire.NLPVersion)
	req.Header.Set(tcwire.HeaderRegion, s.region)
	s.signer.Sign(req, body, s.now().Unix())
	status, raw, err := send(s.http, req)
	if err != nil {
		return vendorScore{}, err
	}
	if status != http.StatusOK {
		a.Response(status, "", raw)
		return vendorScore{}, &VendorError{Status: status, Message: snippet(raw)}
	}
	r, err := tcwire.ParseAnalyzeSentiment(raw)
	switch {
	case err != nil:
		a.Response(status, codeMalformed, raw)
		return vendorScore{}, err
	case r.Error != nil:
		a.Response(status, r.Error.Code, raw)
		return vendorScore{}, &VendorError{Status: status, Code: r.Error.Code, Message: r.Error.Message}
	}
	a.Response(status, "", raw)
	v := labelScore(r.Sentiment, r.Positive, r.Negative, r.Neutral)
	v.RequestID = r.RequestID
	return v, nil
}

// ---- Aliyun NLP GetSaChGeneral (RPC, signature V1) ----

type aliyunScorer struct {
	http       *http.Client
	url        string
	keyID, key string
	now        func() time.Time
}

// aliyunClass classifies the OpenAPI gateway's answers: throttling codes are rate limits, other
// codes and statuses go by the status (5xx retried, 4xx a refusal: UserStatusInvalid,
// BasicServiceNotActivated, signature errors).
func aliyunClass(status int, code string) resilience.Class {
	switch {
	case status == http.StatusOK && code == "":
		return resilience.ClassSuccess
	case status == http.StatusOK && code == codeMalformed:
		return resilience.ClassRetryable
	case strings.HasPrefix(code, "Throttling"):
		return resilience.ClassRateLimited
	}
	return resilience.StatusClass(status)
}

func (s *aliyunScorer) route(cfg Config) resilience.RouteSpec {
	return resilience.RouteSpec{Vendor: "aliyun", Op: "sentiment", Idempotent: true, Settings: settingsFor(cfg), Classify: aliyunClass}
}

func (s *aliyunScorer) model() (string, string) {
	return aliwire.NLPServiceCode + "/" + aliwire.ActionGetSaChGeneral, aliwire.NLPVersion
}

func (s *aliyunScorer) score(ctx context.Context, a *resilience.Attempt, text string) (vendorScore, error) {
	p := aliwire.RPCParams(aliwire.ActionGetSaChGeneral, aliwire.NLPVersion, s.keyID, uuid.NewString(), s.now())
	p.Set("ServiceCode", aliwire.NLPServiceCode)
	p.Set("Text", text)
	p.Set("Signature", aliwire.SignV1(http.MethodPost, p, s.key))
	form := p.Encode()
	audited := url.Values{"Action": {aliwire.ActionGetSaChGeneral}, "ServiceCode": {aliwire.NLPServiceCode}, "Text": {text}}
	a.Request([]byte(audited.Encode())) // the audit record gets the business parameters, not the key id or signature
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/", strings.NewReader(form))
	if err != nil {
		return vendorScore{}, bus.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	status, raw, err := send(s.http, req)
	if err != nil {
		return vendorScore{}, err
	}
	if status != http.StatusOK {
		var e aliwire.ErrorResponse
		_ = json.Unmarshal(raw, &e)
		a.Response(status, e.Code, raw)
		if e.Code == "" {
			e.Message = snippet(raw)
		}
		return vendorScore{}, &VendorError{Status: status, Code: e.Code, Message: e.Message}
	}
	id, r, err := aliwire.ParseGetSaChGeneral(raw)
	if err != nil {
		a.Response(status, codeMalformed, raw)
		return vendorScore{}, err
	}
	a.Response(status, "", raw)
	label := map[string]string{aliwire.SaPositive: "positive", aliwire.SaNegative: "negative", aliwire.SaNeutral: "neutral"}[r.Sentiment]
	v := labelScore(label, r.PositiveProb, r.NegativeProb, max(0, 1-r.PositiveProb-r.NegativeProb))
	v.RequestID = id
	return v, nil
}

// newScorer returns the configured vendor, or nil (and why) when messages are scored in process.
func newScorer(cfg Config, client *http.Client, now func() time.Time) (scorer, string) {
	ok, reason := cfg.configured()
	if !ok {
		return nil, reason
	}
	switch cfg.Provider {
	case ProviderTencent:
		base := cfg.APIBase
		if base == "" {
			base = "https://" + tcwire.NLPHost
		}
		return &tencentScorer{http: client, url: base, region: cfg.TencentRegion, now: now,
			signer: tcwire.Signer{SecretID: cfg.TencentSecretID, SecretKey: cfg.TencentSecretKey, Service: tcwire.NLPService}}, ""
	case ProviderAliyun:
		base := cfg.APIBase
		if base == "" {
			base = "https://" + aliwire.NLPHost
		}
		return &aliyunScorer{http: client, url: base, keyID: cfg.AliyunAccessKeyID, key: cfg.AliyunAccessKeySecret, now: now}, ""
	}
	return nil, ""
}

// errReason is a short reason for a fallback: the vendor's code or the pipeline's outcome.
func errReason(err error) string {
	var re *resilience.Error
	if errors.As(err, &re) {
		var ve *VendorError
		if errors.As(err, &ve) && ve.Code != "" {
			return re.Outcome + ": " + ve.Code
		}
		return re.Outcome
	}
	return err.Error()
}
