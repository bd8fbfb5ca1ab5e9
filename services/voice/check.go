package voice

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/services/voice/internal/asr"
)

// The start checks (connector.CheckVendor) of what the voice connector signs with, each on a
// route of its own (<vendor>.check) so that it neither counts in nor trips the ASR routes'
// breakers and alerts:
//
//   - Aliyun NLS, when configured (transcription, its failover, prompts, the TCCC path's file
//     transcription): CreateToken with VOICE_ALIYUN_ACCESS_KEY_ID and
//     VOICE_ALIYUN_ACCESS_KEY_SECRET. A key Aliyun does not know or a signature that does not
//     match stops the start naming the variable.
//   - iFlytek RTASR, when live transcription uses it (VOICE_ASR=iflytek, or its failover): the
//     signed handshake (appid, ts, signa with VOICE_IFLYTEK_API_KEY, lang, pd) is opened, the
//     "started" action or the error frame read, and the stream closed with no audio sent. An
//     appid, signature or lang iFlytek refuses stops the start naming the variable. (RTASR has
//     no read-only call: the check opens one session of no audio.)
//
// A vendor busy or unreachable only warns: an outage is not a configuration error.

var checkSettings = resilience.Settings{Timeout: 5 * time.Second, Budget: 12 * time.Second, MaxAttempts: 2,
	Backoff: 500 * time.Millisecond, MaxBackoff: time.Second, MaxConcurrent: 1, MaxWait: time.Second}

// checkVendor runs the start checks.
func (s *server) checkVendor(ctx context.Context) error {
	if err := s.checkAliyun(ctx); err != nil {
		return err
	}
	return s.checkIFlytek(ctx)
}

// usesIFlytek reports whether live transcription opens iFlytek streams (first or on failover).
func (c *Config) usesIFlytek() bool {
	return c.hasIFlytek() && (c.ASR == asrIFlytek || c.ASR == asrAliyun && c.ASRFailover)
}

// checkIFlytek opens and closes one RTASR stream with the connector's settings.
func (s *server) checkIFlytek(ctx context.Context) error {
	if !s.cfg.usesIFlytek() {
		return nil
	}
	reg, err := s.rt.Resilience()
	if err != nil {
		return err
	}
	route, err := reg.Route(resilience.RouteSpec{Vendor: "iflytek", Op: "check", Idempotent: true, Settings: checkSettings,
		Classify: classifyHandshake})
	if err != nil {
		return err
	}
	fly := &asr.IFlytek{URL: s.cfg.IFlytekURL, AppID: s.cfg.IFlytekAppID, APIKey: s.cfg.IFlytekAPIKey, Lang: s.cfg.IFlytekLang, PD: s.cfg.IFlytekPD}
	return connector.CheckVendor(ctx, s.rt, "iflytek", func(ctx context.Context) error {
		_, err := resilience.Do(ctx, route, resilience.Call{Key: "start check"}, func(ctx context.Context, a *resilience.Attempt) (struct{}, error) {
			sess, err := fly.Open(ctx, func(asr.Result) {})
			if err == nil {
				sess.Close() // started: the configuration is accepted; no audio, nothing billed beyond the session
			}
			reportVendorError(a, err)
			return struct{}{}, err
		})
		var ve *asr.VendorError
		if err == nil || !errors.As(err, &ve) {
			return err
		}
		return iflytekRefused(s.cfg, ve)
	})
}

// iflytekRefused names the variable an RTASR handshake error is about (an error wrapping
// connector.ErrMisconfigured), or returns ve itself when it is not about the configuration.
func iflytekRefused(cfg *Config, ve *asr.VendorError) error {
	desc := strings.ToLower(ve.Desc)
	switch {
	case strings.Contains(desc, "signa"):
		return connector.Misconfigured("VOICE_IFLYTEK_API_KEY refused by iFlytek RTASR (the handshake's signa does not match): %w", ve)
	case ve.Code == "10105":
		return connector.Misconfigured("VOICE_IFLYTEK_APP_ID=%s or VOICE_IFLYTEK_API_KEY refused by iFlytek RTASR (illegal access: "+
			"an appid it does not know, a key not of that app, a server IP not on the app's allow-list, or this machine's clock more than 5 minutes off): %w",
			cfg.IFlytekAppID, ve)
	case ve.Code == "10110" && (strings.Contains(desc, "lang") || strings.Contains(desc, "license")):
		return connector.Misconfigured("VOICE_IFLYTEK_LANG=%s is not enabled on iFlytek app %s (no licence; enable the language or dialect in the console): %w",
			cfg.IFlytekLang, cfg.IFlytekAppID, ve)
	case ve.Code == "10110":
		return connector.Misconfigured("VOICE_IFLYTEK_APP_ID=%s has no RTASR licence: %w", cfg.IFlytekAppID, ve)
	case ve.Code == "10106" || ve.Code == "10107":
		return connector.Misconfigured("iFlytek RTASR refused the handshake's parameters (VOICE_IFLYTEK_LANG=%s, VOICE_IFLYTEK_PD=%s): %w",
			cfg.IFlytekLang, cfg.IFlytekPD, ve)
	}
	return ve
}

// checkAliyun asks Aliyun NLS for a token.
func (s *server) checkAliyun(ctx context.Context) error {
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
