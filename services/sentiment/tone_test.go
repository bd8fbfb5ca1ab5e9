package sentiment_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/services/sentiment"
)

// toneMessage is a call's transcript segment as the unifier publishes it: a voice inbound text
// whose body carries the caller's voice tone.
func toneMessage(t *testing.T, msgID, text string, arousal float64, label string) event.Event {
	t.Helper()
	e := messageAdded(t, msgID, "voice", text)
	var data map[string]any
	if err := json.Unmarshal(e.Data(), &data); err != nil {
		t.Fatal(err)
	}
	data["message"].(map[string]any)["body"].(map[string]any)["tone"] = map[string]any{"energy_dbfs": -15.2, "pitch_hz": 127,
		"rate": 6.5, "delta": map[string]any{"energy_db": 5, "pitch_st": 8.5, "rate_pct": 22}, "arousal": arousal, "label": label,
		"baseline_ms": 3000}
	if err := e.SetData("application/json", data); err != nil {
		t.Fatal(err)
	}
	if err := schema.Default().Validate(e.Type(), e.Data()); err != nil {
		t.Fatal(err)
	}
	return e
}

// TestVoiceTone: the caller's voice on a call's transcript segment combines with the words. The
// same words — a double charge, mildly worded — said calmly score as the words alone and raise
// no alert; said in an agitated voice they score more negative and raise the alert, and the
// provenance says the tone contributed and by how much. In the bank case, with a vendor scoring
// the words, the calm opening is left alone and the angry complaint raises the alert.
func TestVoiceTone(t *testing.T) {
	t.Parallel()
	const words = "我的卡被扣了两次钱"
	check := func(t *testing.T, s scored, label string) {
		t.Helper()
		tone := s.Provenance.Tone
		if tone == nil || tone.Label != label {
			t.Fatalf("provenance.tone %+v, want the %s voice", tone, label)
		}
		if math.Abs(tone.WordsScore+tone.Shift-s.Score) > 1e-9 && !(tone.Shift == 0 && s.Score == tone.WordsScore) {
			t.Fatalf("score %v is not words %v + shift %v", s.Score, tone.WordsScore, tone.Shift)
		}
	}
	t.Run("calm voice", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, "builtin", nil)
		tb.publish(t, toneMessage(t, "voice:c1:caller:seg1:final", words, 0.12, "calm"))
		s := tb.scoreOf(t, "voice:c1:caller:seg1:final")
		check(t, s, "calm")
		if s.Provenance.Tone.Shift != 0 || s.NegativeEpisode || s.Score > -0.2 {
			t.Fatalf("%+v", s)
		}
		tb.say(t, "m2", "好") // the calm call raised nothing by then
		if got := tb.alerts(t); len(got) != 0 {
			t.Fatalf("alerts %v", ids(got))
		}
	})
	t.Run("agitated voice", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, "builtin", nil)
		tb.publish(t, toneMessage(t, "voice:c1:caller:seg1:final", words, 0.68, "agitated"))
		s := tb.scoreOf(t, "voice:c1:caller:seg1:final")
		check(t, s, "agitated")
		if s.Provenance.Tone.Shift >= -0.3 || s.Label != "negative" || !s.NegativeEpisode || s.Provenance.Provider != "builtin" {
			t.Fatalf("%+v", s)
		}
		got := tb.alerts(t)
		if len(got) != 1 || got[0].Type() != sentiment.TypeAlertRaised || got[0].ID() != "sentiment:raised:voice:c1:caller:seg1:final" {
			t.Fatalf("alerts %v", ids(got))
		}
	})
	t.Run("bank case", func(t *testing.T) {
		t.Parallel()
		tb := setup(t, "tencent", nil)
		tb.publish(t, toneMessage(t, "voice:c2:caller:seg0:final", "你好，我想查一下我的信用卡账单。", 0, "calm"))
		opening := tb.scoreOf(t, "voice:c2:caller:seg0:final")
		check(t, opening, "calm")
		if opening.Provenance.Tone.Shift != 0 || opening.NegativeEpisode || opening.Provenance.Provider != "tencent" {
			t.Fatalf("the opening: %+v", opening)
		}
		tb.publish(t, toneMessage(t, "voice:c2:caller:seg1:final", "我的银行卡被扣了两次钱，你们到底怎么回事！", 0.68, "agitated"))
		angry := tb.scoreOf(t, "voice:c2:caller:seg1:final")
		check(t, angry, "agitated")
		if angry.Provenance.Tone.Shift >= 0 && angry.Score > -1 || angry.Label != "negative" || !angry.NegativeEpisode {
			t.Fatalf("the complaint: %+v", angry)
		}
		if got := tb.alerts(t); len(got) != 1 || got[0].ID() != "sentiment:raised:voice:c2:caller:seg1:final" {
			t.Fatalf("alerts %v", ids(got))
		}
	})
}
