package wechatkf

import (
	"context"
	"errors"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

// checkVendor is the start check (connector.CheckVendor): GET /cgi-bin/gettoken with
// WECHATKF_CORP_ID and WECHATKF_SECRET, on a route of its own (wecom.check) so that it neither
// counts in nor trips gettoken's breaker and alerts. WeCom's refusal names the variable to fix:
// 40013/41002 the corp id, 40001/41004 the secret, 60020 the server's IP missing from the app's
// trusted IPs, 48002 an app without API access; any other errcode but -1 (busy) and 45009 (rate
// limit) stops the start too. The token it gets is put in the token cache: the first pull uses
// it, so the check adds no call.
func (c *client) checkVendor(ctx context.Context, rt *connector.Runtime) error {
	return connector.CheckVendor(ctx, rt, "wecom", func(ctx context.Context) error {
		began := time.Now()
		tok, err := c.requestToken(ctx, c.check, c.corpID)
		var we *wecom.Error
		switch {
		case err == nil:
			return c.tokens.Put(c.corpID, tok, began)
		case !errors.As(err, &we) || we.Retryable():
			return err
		}
		switch we.Code {
		case wecom.CodeInvalidCorpID, wecom.CodeMissingCorpID:
			return connector.Misconfigured("WECHATKF_CORP_ID=%s refused by gettoken: %w; copy the corp id (企业ID) from the WeCom admin console (我的企业 → 企业信息)", c.corpID, we)
		case wecom.CodeInvalidSecret, wecom.CodeMissingSecret:
			return connector.Misconfigured("WECHATKF_SECRET refused by gettoken for corp %s: %w; copy the 微信客服 app's Secret (应用管理 → 微信客服 → API → Secret)", c.corpID, we)
		case wecom.CodeIPNotAllowed:
			return connector.Misconfigured("gettoken refused this server's IP address: %w; add it to the app's trusted IPs (企业可信IP) in the WeCom admin console", we)
		case wecom.CodeAPIForbidden:
			return connector.Misconfigured("gettoken: the app of WECHATKF_SECRET may not use the API: %w", we)
		}
		return connector.Misconfigured("WECHATKF_CORP_ID/WECHATKF_SECRET refused by gettoken: %w", we)
	})
}
