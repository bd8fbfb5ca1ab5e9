// Package canary routes a share of a service's traffic to a new variant — another vendor, a new
// connector version — and rolls it back when it fails (the seed's 灰度). One Rollout per
// target (e.g. the SMS connector's "sms", whose variants are its providers):
//
//	r, err := canary.Start(ctx, canary.Options{Target: "sms", Service: "sms", Baseline: "aliyun",
//		Variants: []string{"aliyun", "tencent"}, Config: os.Getenv("SMS_CANARY"), Publish: rt.Publish, KV: kv})
//	d := r.Pick(canary.Request{Key: "phone:+8613800138000", Channel: "sms", Account: sign})
//	start := time.Now()
//	_, err = providers[d.Variant].send(ctx, ...)
//	r.Record(ctx, d.Variant, canary.ResultOf(err), time.Since(start))
//
// # Plans
//
// A plan is written in one line, in configuration (SMS_CANARY=...) and in the operator's command:
//
//	<candidate>:<percent>%[;channel=<c>,...][;account=<a>,...][;agent=<id>,...][;group=<g>,...][;margin=<points>%][;min_calls=<n>]
//
//	tencent:10%                      10 % of the customers to Tencent, the rest stays on the baseline
//	cainiao:100%;agent=a-17,a-23     the logistics pilot: every request of two agents
//	tencent:25%;account=shop;margin=2%;min_calls=100
//
// "off" (or an empty value) is no rollout. An unknown candidate, the baseline named as the
// candidate, a share outside 0–100 % or an unknown clause is an error wrapping ErrInvalidPlan,
// with a suggestion for a misspelt name.
//
// A request is eligible when it matches every selector given (channel, account; agent or group
// when either is given). An eligible request goes to the candidate when the bucket of its
// customer key — a stable hash of target, candidate and key into 0..9999 — is below the share
// (basis points): the same customer always gets the same variant, raising the share keeps the
// customers already on the candidate, and a request without a key stays on the baseline.
//
// # Tracking and rollback
//
// Record counts each call of each variant in a sliding window (5 minutes of 10 buckets): calls,
// failures, mean and p95 latency. ResultOf reads a pkg/resilience outcome: a vendor's refusal
// of the request itself and a cancelled call are not counted. The candidate is rolled back as
// soon as it made at least min_calls calls in the window (default 20) and its failure ratio
// exceeds the baseline's by more than margin (default 5 points), with at least
// MinExcessFailures (3) more failures than the baseline's ratio predicts, so that two unlucky
// calls in a small window do not take a pilot down; a baseline with fewer than min_calls calls
// counts as failing none. The rollback takes effect in the process at once; it
// is then stored and announced once.
//
// # State and events
//
// The rollout lives in the JetStream key-value bucket omnibus_canary under the target's name,
// written with compare-and-set and watched by every replica, so replicas route alike and one
// replica's rollback (or an operator's command handled by any) reaches all. A restart keeps the
// stored rollout — a rollback stays rolled back — unless the configuration text changed since it
// was stored: then the configuration applies.
//
// Events (stream OMNI_OPS): omni.ops.canary.started, .changed, .rolled_back, .ended, and every
// 30 s while an active rollout sees calls, omni.ops.canary.measured with the per-variant
// windows. The operator's command omni.ops.canary.set.requested on omni.ops.canary.set.<target>
// carries {"target", "plan", "by", "reason"}; HandleCommand applies it.
package canary
