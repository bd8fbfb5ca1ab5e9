package sandbox

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
	"github.com/omnibus-dev/omnibus/services/sandbox/tccc"
)

// mountTCCC mounts the simulated Tencent Cloud Contact Center with the voice connector's
// VOICE_TCCC_* credentials and, every SANDBOX_TCCC_CALL_INTERVAL, lets it take a call from a
// simulated customer: the customer and the agent say catalogue sentences, the recording is
// served, and the pushes go to the voice connector (every fourth call's CDR push lost, every
// fifth call a voicemail).
func mountTCCC(ctx context.Context, env *sim.Env, cfg *Config, l config.Lookup) error {
	id, err := strconv.ParseInt(cred(l, "VOICE_TCCC_SDK_APP_ID"), 10, 64)
	if err != nil {
		return fmt.Errorf("tccc simulator: VOICE_TCCC_SDK_APP_ID: %w", err)
	}
	s, err := tccc.New(env, tccc.Config{SdkAppID: id, SecretID: cred(l, "VOICE_TCCC_SECRET_ID"), SecretKey: cred(l, "VOICE_TCCC_SECRET_KEY"),
		Base: cfg.Base, PushURL: env.Hook("/voice/tccc"), PushAuth: get(l, "VOICE_TCCC_PUSH_AUTH", "basic"),
		PushUser: cred(l, "VOICE_TCCC_PUSH_USER"), PushPassword: cred(l, "VOICE_TCCC_PUSH_PASSWORD"),
		ClientID: cred(l, "VOICE_TCCC_OAUTH_CLIENT_ID"), ClientSecret: cred(l, "VOICE_TCCC_OAUTH_CLIENT_SECRET"),
		Hotline: cfg.Hotline, PushDelay: time.Second, Log: env.VendorLog(tccc.Vendor)})
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, s.Close)
	if cfg.TCCCCallInterval > 0 {
		people := sim.Population(cfg.Customers, uint64(cfg.Seed))
		go tcccCalls(ctx, s, people, cfg.TCCCCallInterval, cfg.Seed, env.VendorLog(tccc.Vendor))
	}
	return nil
}

// tcccCalls places the demo's TCCC calls until ctx ends.
func tcccCalls(ctx context.Context, s *tccc.Sim, people []sim.Customer, every time.Duration, seed int64, log *slog.Logger) {
	r := rand.New(rand.NewPCG(uint64(seed), 679))
	var ids []string
	for _, u := range speech.Catalogue() {
		ids = append(ids, u.ID)
	}
	t := time.NewTimer(min(every, 15*time.Second))
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			t.Reset(every)
		}
		c := people[r.IntN(len(people))]
		call := tccc.Call{Customer: strings.TrimPrefix(c.Phone, "+86"), Lost: n%4 == 0, Voicemail: n%5 == 0,
			Says: []string{ids[r.IntN(len(ids))], ids[r.IntN(len(ids))], ids[r.IntN(len(ids))]}}
		if call.Voicemail {
			call.Says = call.Says[:1]
		}
		p, err := s.Place(call)
		if err != nil {
			log.Warn("simulated TCCC call not placed", "err", err)
			continue
		}
		log.Debug("simulated TCCC call", "session", p.CDR.SessionID, "customer", c.ID, "lost_push", call.Lost, "voicemail", call.Voicemail)
	}
}
