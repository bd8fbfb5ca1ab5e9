package sms

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// checker is a vendor with a start check: one signed, read-only call that proves the
// credentials and the settings a send needs (connector.CheckVendor).
type checker interface {
	// newCheck builds the check's signed request; shown is what its audit record holds.
	newCheck(ctx context.Context) (req *http.Request, shown []byte, err error)
	// readCheck reads the answer: its result code for the pipeline, and nil when the vendor
	// accepts the configuration, an error wrapping connector.ErrMisconfigured naming the
	// variables when it refuses it, or a *vendorError for an answer that says nothing about it
	// (throttling, an outage).
	readCheck(status int, body []byte) (code string, err error)
}

// checkSpec is the route of a vendor's start check: <vendor>.check, apart from send_sms so that
// it neither counts in nor trips send_sms's breaker and alerts; an idempotent read, tried twice.
func checkSpec(name string, v vendor, send resilience.Settings) resilience.RouteSpec {
	s := send
	s.MaxAttempts = 2
	s.RateLimit = 0
	return resilience.RouteSpec{Vendor: name, Op: "check", Idempotent: true, Settings: s,
		Classify: func(status int, code string) resilience.Class {
			if code == codeChecked {
				return resilience.ClassPermanent
			}
			return classOf(v, status, code)
		}}
}

// codeChecked is the code an attempt reports when the check's answer refused the configuration
// in a way the vendor's code alone does not say (a signature under review): not retried.
const codeChecked = "check_refused"

// check runs the vendor's start check, if it has one (see checker).
func (s *resilientSend) check(ctx context.Context, rt *connector.Runtime) error {
	c, ok := s.v.(checker)
	if !ok || s.checkRoute == nil {
		return nil
	}
	return connector.CheckVendor(ctx, rt, s.name, func(ctx context.Context) error {
		_, err := resilience.Do(ctx, s.checkRoute, resilience.Call{Key: "start check"}, func(ctx context.Context, a *resilience.Attempt) (struct{}, error) {
			req, shown, err := c.newCheck(ctx)
			if err != nil {
				return struct{}{}, bus.Permanent(fmt.Errorf("%s start check request: %w", s.name, err))
			}
			a.Request(shown)
			resp, err := s.client.Do(req)
			if err != nil {
				return struct{}{}, fmt.Errorf("%s start check: %w", s.name, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
			if err != nil {
				return struct{}{}, fmt.Errorf("%s start check: read answer: %w", s.name, err)
			}
			code, err := c.readCheck(resp.StatusCode, body)
			a.Response(resp.StatusCode, code, body)
			return struct{}{}, err
		})
		return err
	})
}
