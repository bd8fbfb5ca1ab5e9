package voice

// Reconciliation: TCCC's pushes can fail or come late, and its doc advises polling
// DescribeTelCdr. Every VOICE_TCCC_RECONCILE_INTERVAL the connector lists the call records of
// the last VOICE_TCCC_RECONCILE_WINDOW, page by page, and publishes each call it has not
// published yet exactly as its push would have (same events, same ids, same after-call work).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/tencent"
)

// maxCdrPages bounds one reconciliation (100 records a page).
const maxCdrPages = 200

func (t *tccc) reconcile(ctx context.Context) error {
	// The first pass soon after start (pushes lost while the connector was down), then one per
	// interval.
	next := time.NewTimer(min(t.cfg.Reconcile, 5*time.Second))
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-next.C:
		}
		found, err := t.reconcileOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			t.rt.Log.Warn("TCCC reconciliation incomplete; next pass retries", "err", err, "published", found)
		case found > 0:
			t.rt.Log.Warn("TCCC reconciliation published calls whose push never arrived", "calls", found)
		}
		next.Reset(t.cfg.Reconcile)
	}
}

// reconcileOnce lists the window's call records and publishes the unknown ones; it returns how
// many it published.
func (t *tccc) reconcileOnce(ctx context.Context) (int, error) {
	end := t.now()
	start := end.Add(-t.cfg.ReconcileWindow)
	found, seen := 0, 0
	for page := 0; page < maxCdrPages; page++ {
		resp, err := t.describeTelCdr(ctx, tencent.DescribeTelCdrRequest{SdkAppID: t.cfg.SdkAppID, StartTimeStamp: start.Unix(),
			EndTimeStamp: end.Unix(), PageSize: tencent.MaxCdrPageSize, PageNumber: page})
		if err != nil {
			return found, err
		}
		for _, c := range resp.Response.TelCdrList {
			if err := tencent.CheckCdr(c); err != nil {
				t.rt.Log.Warn("TCCC call record skipped", "session", c.SessionID, "err", err)
				continue
			}
			published, err := t.ingest(ctx, c)
			if err != nil {
				return found, fmt.Errorf("session %s: %w", c.SessionID, err)
			}
			if published {
				found++
				t.rt.Log.Info("TCCC call found by reconciliation", "session", c.SessionID, "call_id", TCCCCallID(t.cfg.SdkAppID, c.SessionID))
			}
		}
		seen += len(resp.Response.TelCdrList)
		if len(resp.Response.TelCdrList) == 0 || int64(seen) >= resp.Response.TotalCount {
			return found, nil
		}
	}
	return found, nil
}

func (t *tccc) describeTelCdr(ctx context.Context, in tencent.DescribeTelCdrRequest) (tencent.DescribeTelCdrResponse, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return tencent.DescribeTelCdrResponse{}, err
	}
	signer := tencent.Signer{SecretID: t.cfg.SecretID, SecretKey: t.cfg.SecretKey, Service: tencent.CCCService}
	reply, err := t.callAPI(ctx, t.describe, resilience.Call{Key: fmt.Sprintf("page %d", in.PageNumber)}, body,
		func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.APIURL, bytes.NewReader(body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", tencent.ContentType)
			req.Header.Set(tencent.HeaderAction, tencent.ActionDescribeTelCdr)
			req.Header.Set(tencent.HeaderVersion, tencent.CCCVersion)
			signer.Sign(req, body, t.now().Unix())
			return req, nil
		}, func(b []byte) string { return tencentErrorCode(0, nil, b) }, cdrSummary)
	if err != nil {
		return tencent.DescribeTelCdrResponse{}, err
	}
	var out tencent.DescribeTelCdrResponse
	if err := json.Unmarshal(reply.Body, &out); err != nil {
		return out, fmt.Errorf("DescribeTelCdr answer: %w", err)
	}
	if out.Response.Error != nil {
		return out, fmt.Errorf("DescribeTelCdr: %s: %s", out.Response.Error.Code, out.Response.Error.Message)
	}
	return out, nil
}

// cdrSummary is what the audit record keeps of a DescribeTelCdr answer: the count, the
// sessions listed and the error, not the records (customers' numbers, recording links).
func cdrSummary(body []byte) []byte {
	var r tencent.DescribeTelCdrResponse
	if json.Unmarshal(body, &r) != nil {
		return nil
	}
	sessions := make([]string, 0, len(r.Response.TelCdrList))
	for _, c := range r.Response.TelCdrList {
		sessions = append(sessions, c.SessionID)
	}
	return marshal(map[string]any{"Response": map[string]any{"TotalCount": r.Response.TotalCount, "SessionIds": sessions,
		"Error": r.Response.Error, "RequestId": r.Response.RequestID}})
}
