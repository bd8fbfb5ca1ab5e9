package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// provider is one SMS vendor's outbound side.
type provider interface {
	// send sends text to one E.164 number from sign; ref is the send command's id, passed where
	// the vendor echoes it (Aliyun OutId, Tencent SessionContext). It returns the vendor's id of
	// the message, or an error: a *vendorError for an answer the vendor gave, anything else
	// (transport, timeout) is transient.
	send(ctx context.Context, to, text, sign, ref string) (vendorID string, err error)
}

// verdict says what a vendor error means for the send command.
type verdict int

const (
	// transient: retry later (throttling, vendor outage, clock skew); after SMS_SEND_MAX_DELIVER
	// attempts the command fails with the vendor code.
	transient verdict = iota
	// rejected: this message can never be sent (invalid number, unapproved template or sign,
	// blocked content): a failed status with the vendor code, no retry.
	rejected
	// misconfigured: the connector's own credentials or settings are wrong; every send would
	// fail the same way. The command is dead-lettered with the reason (redrive it once fixed).
	misconfigured
)

func (v verdict) String() string {
	return [...]string{"transient", "rejected", "misconfigured"}[v]
}

// vendorError is an error answer of the vendor.
type vendorError struct {
	Provider, Code, Message string
	Status                  int // HTTP status of the answer
	Verdict                 verdict
}

func (e *vendorError) Error() string {
	return fmt.Sprintf("%s answered %d %s: %s (%s)", e.Provider, e.Status, e.Code, e.Message, e.Verdict)
}

// verdictOf returns the verdict of err: a vendorError's, else transient.
func verdictOf(err error) (verdict, *vendorError) {
	var ve *vendorError
	if errors.As(err, &ve) {
		return ve.Verdict, ve
	}
	return transient, nil
}

// vendor is one SMS vendor's SendSms on the wire; resilientSend makes the calls.
type vendor interface {
	// newSend builds one signed SendSms attempt (fresh timestamp and nonce) for text to one E.164
	// number from sign; ref is the send command's id, passed where the vendor echoes it (Aliyun
	// OutId, Tencent SessionContext). shown is what the audit record holds of the request (it
	// is masked there): the business parameters.
	newSend(ctx context.Context, to, text, sign, ref string) (req *http.Request, shown []byte, err error)
	// readSend reads the answer: the vendor's id of the message and its result code, or a
	// *vendorError whose Code is the code.
	readSend(status int, body []byte) (vendorID, code string, err error)
	// verdict classifies an error answer by its HTTP status and code.
	verdict(status int, code string) verdict
	// throttled reports the codes that say the account's quota is spent for now.
	throttled(code string) bool
}

// sendRateLimit is this process's share of the account's SendSms quota, in calls per second
// (override with RESILIENCE_<ALIYUN|TENCENT>_SEND_SMS_RATE_LIMIT).
const sendRateLimit = 100

// maxAnswer caps a SendSms answer.
const maxAnswer = 1 << 20

// resilientSend is the provider of a vendor: every SendSms goes through the route
// <vendor>.send_sms of pkg/resilience — rate limit, breaker, the attempt's timeout and one
// masked audit record on omni.audit.sms. SendSms is not idempotent (neither vendor dedupes),
// so a call is retried only when its request provably never left; throttling and outages are
// retried through the bus's backoff (handleSend).
type resilientSend struct {
	name   string
	v      vendor
	route  *resilience.Route
	client *http.Client
	// checkRoute is the start check's route (check.go), nil for a vendor without one.
	checkRoute *resilience.Route
}

func newResilientSend(reg *resilience.Registry, name string, v vendor, timeout time.Duration) (*resilientSend, error) {
	settings := resilience.Settings{Timeout: timeout, Budget: timeout, RateLimit: sendRateLimit}
	route, err := reg.Route(resilience.RouteSpec{Vendor: name, Op: "send_sms", Settings: settings,
		Classify: func(status int, code string) resilience.Class { return classOf(v, status, code) }})
	if err != nil {
		return nil, err
	}
	s := &resilientSend{name: name, v: v, route: route, client: &http.Client{}}
	if _, ok := v.(checker); ok {
		if s.checkRoute, err = reg.Route(checkSpec(name, v, settings)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// classOf is the pipeline's class of an answer: success, a refusal (rejected or misconfigured,
// never retried and not counted by the breaker), a rate limit, or a retryable failure.
func classOf(v vendor, status int, code string) resilience.Class {
	switch {
	case status == http.StatusOK && strings.EqualFold(code, "ok"): // Aliyun's "OK", Tencent's "Ok"
		return resilience.ClassSuccess
	case status == http.StatusTooManyRequests || v.throttled(code):
		return resilience.ClassRateLimited
	case v.verdict(status, code) != transient:
		return resilience.ClassPermanent
	}
	return resilience.ClassRetryable
}

func (s *resilientSend) send(ctx context.Context, to, text, sign, ref string) (string, error) {
	return resilience.Do(ctx, s.route, resilience.Call{CorrelationID: ref, Key: ref}, func(ctx context.Context, a *resilience.Attempt) (string, error) {
		req, shown, err := s.v.newSend(ctx, to, text, sign, ref)
		if err != nil {
			return "", bus.Permanent(fmt.Errorf("%s SendSms request: %w", s.name, err))
		}
		a.Request(shown)
		resp, err := s.client.Do(req)
		if err != nil {
			return "", fmt.Errorf("%s SendSms: %w", s.name, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		if err != nil {
			return "", fmt.Errorf("%s SendSms: read answer: %w", s.name, err)
		}
		id, code, err := s.v.readSend(resp.StatusCode, body)
		a.Response(resp.StatusCode, code, body)
		return id, err
	})
}
