package voice_test

import (
	"context"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/sandbox"
	sandboxcaller "github.com/omnibus-dev/omnibus/services/sandbox/caller"
	"github.com/omnibus-dev/omnibus/services/voice"
)

// TestToneRaisedVoice: the sandbox's bank-card caller (CallBankCardComplaint: a calm question,
// then the double charge said louder, higher and faster) calls over real SIP and RTP; the final
// transcript segments carry the caller's tone — the opening calm against itself, the complaint
// agitated against that opening — and partials carry none. With VOICE_TONE=false no segment
// carries a tone.
func TestToneRaisedVoice(t *testing.T) {
	t.Parallel()
	call := func(t *testing.T, extra map[string]string) []segment {
		_, vars := asrSandbox(t)
		for k, v := range extra {
			vars[k] = v
		}
		tb := start(t, nil, vars)
		d, err := sandboxcaller.New(sandboxcaller.Config{Target: tb.sipAddr, Log: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		sc := &sandbox.CallScenario{Dialer: d, Hotline: hotline}
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		defer cancel()
		if res, err := sc.Place(ctx, customer, sandbox.CallBankCardComplaint); err != nil || res.HungUpBy != "caller" {
			t.Fatalf("call: %+v %v", res, err)
		}
		if d := ended(t, tb.waitEnded(t, 1, 15*time.Second)[voice.TypeCallEnded][0]); d.Transcript != "complete" {
			t.Fatalf("ended %+v", d)
		}
		all, finals := tb.segments(t)
		checkTranscript(t, all, finals, sandbox.CallBankCardComplaint.Utterances...)
		for _, s := range all {
			if !s.Final && s.Tone != nil {
				t.Errorf("partial with a tone: %+v", s)
			}
		}
		return finals
	}
	t.Run("tone", func(t *testing.T) {
		t.Parallel()
		finals := call(t, nil)
		calm, angry := finals[0].Tone, finals[1].Tone
		if calm == nil || angry == nil {
			t.Fatalf("finals without tone: %+v", finals)
		}
		t.Logf("opening %+v", *calm)
		t.Logf("complaint %+v", *angry)
		if calm.Label != "calm" || calm.BaselineMS < 1000 || calm.PitchHz <= 0 || calm.EnergyDBFS > -6 || calm.EnergyDBFS < -40 {
			t.Errorf("the opening: %+v, want calm, measured on at least 1 s", *calm)
		}
		if angry.Label == "calm" || angry.Arousal < 0.3 || angry.Delta.EnergyDB < 3 || angry.Delta.PitchST < 2 ||
			angry.BaselineMS != calm.BaselineMS {
			t.Errorf("the complaint: %+v, want raised or agitated: louder and higher than the opening", *angry)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		for _, f := range call(t, map[string]string{"VOICE_TONE": "false"}) {
			if f.Tone != nil {
				t.Errorf("VOICE_TONE=false, tone %+v", f)
			}
		}
	})
}
