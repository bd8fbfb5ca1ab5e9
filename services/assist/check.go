package assist

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// The start check (connector.CheckVendor): GET <ASSIST_API_BASE>/models with the API key, the
// OpenAI-compatible model list every provider the connector speaks serves (OpenAI, Bailian's
// compatible mode, vLLM, Ollama), on a route of its own (llm.check) so that it neither counts
// in nor trips the suggestion button's breaker and alerts. 401/403: ASSIST_API_KEY refused; 404:
// ASSIST_API_BASE is not an OpenAI-compatible base (it names the path <base>/chat/completions is
// built from); a list without ASSIST_MODEL is a warning naming the nearest model, since some
// providers list fewer models than they serve.

// checkSettings: two tries (a 5xx or timeout is retried once, then the start goes on warned).
var checkSettings = resilience.Settings{Timeout: 10 * time.Second, Budget: 15 * time.Second, MaxAttempts: 2,
	Backoff: 500 * time.Millisecond, MaxBackoff: time.Second, MaxConcurrent: 1, MaxWait: time.Second}

// checkVendor runs the start check.
func (c *Connector) checkVendor(ctx context.Context) error {
	reg, err := c.rt.Resilience()
	if err != nil {
		return err
	}
	route, err := reg.Route(resilience.RouteSpec{Vendor: "llm", Op: "check", Idempotent: true, Settings: checkSettings})
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(c.cfg.APIBase, "/")
	return connector.CheckVendor(ctx, c.rt, "llm", func(ctx context.Context) error {
		models, err := resilience.Do(ctx, route, resilience.Call{Key: "start check"}, func(ctx context.Context, a *resilience.Attempt) ([]string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/models", nil)
			if err != nil {
				return nil, err
			}
			req.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
			resp, err := c.client.http.Do(req)
			if err != nil {
				return nil, err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			var list struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
				Error *struct {
					Message string `json:"message"`
					Code    any    `json:"code"`
				} `json:"error"`
			}
			_ = json.Unmarshal(body, &list)
			code := ""
			if list.Error != nil {
				code = fmt.Sprint(list.Error.Code)
			}
			a.Response(resp.StatusCode, code, nil) // the list itself is not worth an audit body
			switch {
			case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
				reason := http.StatusText(resp.StatusCode)
				if list.Error != nil && list.Error.Message != "" {
					reason = list.Error.Message
				}
				return nil, connector.Misconfigured("ASSIST_API_KEY refused by %s/models (%d: %s); set the provider's API key", base, resp.StatusCode, reason)
			case resp.StatusCode == http.StatusNotFound:
				return nil, connector.Misconfigured("ASSIST_API_BASE=%s answers 404 to /models: not an OpenAI-compatible API base (calls go to <base>/chat/completions; the base usually ends in /v1, or /compatible-mode/v1 for Bailian)", base)
			case resp.StatusCode != http.StatusOK:
				return nil, fmt.Errorf("%s/models answered %d", base, resp.StatusCode)
			}
			ids := make([]string, 0, len(list.Data))
			for _, m := range list.Data {
				ids = append(ids, m.ID)
			}
			return ids, nil
		})
		if err != nil {
			return err
		}
		if len(models) > 0 && !slices.Contains(models, c.cfg.Model) {
			c.rt.Log.Warn("ASSIST_MODEL is not in the provider's model list: suggestions will fail if the provider does not serve it"+
				config.DidYouMean(c.cfg.Model, models), "model", c.cfg.Model, "models", len(models))
		}
		return nil
	})
}
