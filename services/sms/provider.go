package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
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

// call performs req and returns the status and body (capped), closing the body.
func call(client *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, body, nil
}

func newClient(timeout time.Duration) *http.Client { return &http.Client{Timeout: timeout} }
