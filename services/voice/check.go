package voice

import (
	"context"
	"errors"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/services/voice/internal/asr"
)

// The start check (connector.CheckVendor) of what the voice connector signs with: when Aliyun
// NLS is configured (transcription, its failover, prompts, the TCCC path's file transcription),
// CreateToken with VOICE_ALIYUN_ACCESS_KEY_ID and VOICE_ALIYUN_ACCESS_KEY_SECRET, on a route of
// its own (aliyun.check) so that it neither counts in nor trips the ASR routes' breakers and
// alerts. A key Aliyun does not know or a signature that does not match stops the start naming
// the variable; Aliyun busy or unreachable only warns. iFlytek's real-time API has no read-only
// call (its signed handshake opens a billed session), so its settings are proven by the first call
// and, with VOICE_ASR_FAILOVER, a refusal fails over to Aliyun.

var checkSettings = resilience.Settings{Timeout: 5 * time.Second, Budget: 12 * time.Second, MaxAttempts: 2,
	Backoff: 500 * time.Millisecond, MaxBackoff: time.Second, MaxConcurrent: 1, MaxWait: time.Second}

// checkVendor runs the start check.
func (s *server) checkVendor(ctx context.Context) error {
	if !s.cfg.hasAliyun() {
		return nil
	}
	reg, err := s.rt.Resilience()
	if err != nil {
		return err
	}
	route, err := reg.Route(resilience.RouteSpec{Vendor: "aliyun", Op: "check", Idempotent: true, Settings: checkSettings,
		Classify: classifyHandshake})
	if err != nil {
		return err
	}
	ali := &asr.Aliyun{TokenURL: s.cfg.AliyunTokenURL, AccessKeyID: s.cfg.AliyunAccessKeyID, AccessKeySecret: s.cfg.AliyunAccessSecret}
	return connector.CheckVendor(ctx, s.rt, "aliyun", func(ctx context.Context) error {
		_, err := resilience.Do(ctx, route, resilience.Call{Key: "start check"}, func(ctx context.Context, a *resilience.Attempt) (string, error) {
			tok, err := ali.Token(ctx)
			var he *asr.HandshakeError
			var ve *asr.VendorError
			switch {
			case err == nil:
				a.Response(200, "", nil)
			case errors.As(err, &he) && errors.As(err, &ve):
				a.Response(he.Status, ve.Code, nil)
			case errors.As(err, &he):
				a.Response(he.Status, "", nil)
			}
			return tok, err
		})
		var ve *asr.VendorError
		if err == nil || !errors.As(err, &ve) {
			return err
		}
		switch ve.Code {
		case "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive", "InvalidAccessKeyId":
			return connector.Misconfigured("VOICE_ALIYUN_ACCESS_KEY_ID=%s refused by CreateToken: %w", s.cfg.AliyunAccessKeyID, ve)
		case "SignatureDoesNotMatch", "IncompleteSignature":
			return connector.Misconfigured("VOICE_ALIYUN_ACCESS_KEY_SECRET refused by CreateToken (the signature does not match): %w", ve)
		case "Forbidden.RAM", "Forbidden", "NoPermission":
			return connector.Misconfigured("the AccessKey of VOICE_ALIYUN_ACCESS_KEY_ID may not call CreateToken: %w; grant it the NLS permission (AliyunNLSFullAccess)", ve)
		}
		return err
	})
}
