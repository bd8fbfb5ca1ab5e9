package speech_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/zaf/g711"

	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

var update = flag.Bool("update", false, "regenerate catalogue.json with espeak-ng")

// sentences is the catalogue's source: what a contact centre hears.
var sentences = []speech.Utterance{
	{ID: "zh-double-charge", Lang: "zh", Voice: "cmn", Text: "我的银行卡被扣了两次钱，你们到底怎么回事！"},
	{ID: "zh-order-number", Lang: "zh", Voice: "cmn", Text: "我的订单号是五五八八一二三四。"},
	{ID: "zh-parcel", Lang: "zh", Voice: "cmn", Text: "你好，我想查一下我的快递到哪里了。"},
	{ID: "en-manager", Lang: "en", Voice: "en-us", Text: "I want to speak to a manager, this is unacceptable."},
	{ID: "en-order-number", Lang: "en", Voice: "en-us", Text: "My order number is 5 5 8 8 1 2 3 4."},
	{ID: "en-refund", Lang: "en", Voice: "en-us", Text: "Hello, I would like a refund for my last purchase."},
	// The bank-card caller (the sandbox's CallBankCardComplaint): a calm opening, then the
	// double charge said angrily — louder, higher and faster.
	{ID: "zh-card-bill", Lang: "zh", Voice: "cmn", Text: "你好，我想查一下我的信用卡账单。"},
	{ID: "zh-double-charge-angry", Lang: "zh", Voice: "cmn", Text: "我的银行卡被扣了两次钱，你们到底怎么回事！", Amplitude: 180, Pitch: 80, Speed: 230},
	// An order number in the OMS's format, as an ASR with inverse text normalisation writes it
	// (the bank case's automatic ticket finds it in the transcript).
	{ID: "zh-order-so", Lang: "zh", Voice: "cmn", Text: "我的订单号是SO2026120700001234。"},
}

// synth returns the audio of every source sentence, skipping when espeak-ng is missing.
func synth(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, u := range sentences {
		pcm, err := speech.SynthesizeUtterance(context.Background(), u, "")
		if errors.Is(err, speech.ErrNoTTS) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		out[u.ID] = pcm
	}
	return out
}

// print is the fingerprint of a whole clip, as the recogniser segments it.
func print(pcm []byte) []int16 {
	env := speech.Envelope(pcm)
	first, last := -1, -1
	for i, v := range env {
		if v.DB >= 38 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return speech.Quantize(speech.Fingerprint(env[first : last+1]))
}

// TestCatalogue regenerates the catalogue with -update; otherwise, where espeak-ng is installed,
// it checks that the committed fingerprints still recognise freshly synthesised speech.
func TestCatalogue(t *testing.T) {
	audio := synth(t)
	if *update {
		cat := make([]speech.Utterance, len(sentences))
		for i, u := range sentences {
			u.Print = print(audio[u.ID])
			cat[i] = u
		}
		b, err := json.MarshalIndent(cat, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("catalogue.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		// The committed audio of a new utterance (existing files are kept: another espeak-ng
		// build would change their bytes for nothing).
		for _, u := range sentences {
			path := "audio/" + u.ID + ".ul"
			if _, err := os.Stat(path); err == nil {
				continue
			}
			if err := os.WriteFile(path, g711.EncodeUlaw(audio[u.ID]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cat := speech.Catalogue()
	if len(cat) != len(sentences) {
		t.Fatalf("catalogue has %d entries, the source %d: run go test -run TestCatalogue -update", len(cat), len(sentences))
	}
	for _, u := range sentences {
		got := recognise(t, audio[u.ID], 1)
		if len(got) != 1 || got[0].Match != u.ID {
			t.Errorf("%s: recognised %+v", u.ID, got)
		}
	}
}

// recognise streams pcm, padded with silence and cut into random chunks, and returns the finals.
func recognise(t testing.TB, pcm []byte, seed uint64) []speech.Result {
	t.Helper()
	r := speech.NewRecognizer(speech.Catalogue())
	rnd := rand.New(rand.NewPCG(seed, 1))
	stream := append(make([]byte, 2*8000*(1+rnd.IntN(2))), pcm...)
	stream = append(stream, make([]byte, 2*8000)...)
	var res []speech.Result
	for len(stream) > 0 {
		n := min(len(stream), 2*(1+rnd.IntN(400)))
		res = append(res, r.Write(stream[:n])...)
		stream = stream[n:]
	}
	res = append(res, r.Flush()...)
	var finals []speech.Result
	for _, x := range res {
		if x.Final {
			finals = append(finals, x)
		}
	}
	return finals
}

// ulaw passes pcm through a G.711 µ-law round trip, as a phone call does.
func ulaw(pcm []byte) []byte {
	out := make([]byte, len(pcm))
	for i := 0; i+1 < len(pcm); i += 2 {
		x := float64(int16(uint16(pcm[i]) | uint16(pcm[i+1])<<8))
		s := 1.0
		if x < 0 {
			s, x = -1, -x
		}
		y := math.Log1p(255*x/32768) / math.Log1p(255) // 0..1
		y = math.Round(y*127) / 127                    // 8-bit code
		v := int16(s * 32768 * (math.Pow(256, y) - 1) / 255)
		out[i], out[i+1] = byte(v), byte(uint16(v)>>8)
	}
	return out
}

// TestRecognizer: through a µ-law round trip, silence padding and random chunking, each
// utterance is recognised (two in a row as two segments, in order), partials come before the
// final, and speech not in the catalogue is unintelligible.
func TestRecognizer(t *testing.T) {
	t.Parallel()
	audio := synth(t)
	for i, u := range sentences {
		for seed := range uint64(3) {
			got := recognise(t, ulaw(audio[u.ID]), seed+uint64(i))
			if len(got) != 1 || got[0].Match != u.ID || got[0].Text != u.Text || got[0].Confidence < 0.5 {
				t.Errorf("%s seed %d: %+v", u.ID, seed, got)
			}
		}
	}
	// Lost packets (the receiver fills them with silence) do not change the match.
	for i, u := range sentences {
		pcm := ulaw(audio[u.ID])
		rnd := rand.New(rand.NewPCG(uint64(i), 9))
		for range 6 {
			at := 320 * rnd.IntN(len(pcm)/320)
			clear(pcm[at:min(at+320, len(pcm))])
		}
		if got := recognise(t, pcm, uint64(i)); len(got) != 1 || got[0].Match != u.ID {
			t.Errorf("%s with lost packets: %+v", u.ID, got)
		}
	}
	two := append(append(append([]byte(nil), audio["zh-double-charge"]...), make([]byte, 2*8000*3/2)...), audio["en-manager"]...)
	r := speech.NewRecognizer(speech.Catalogue())
	res := append(r.Write(two), r.Write(make([]byte, 2*8000))...)
	var seq []string
	for _, x := range res {
		kind := "partial"
		if x.Final {
			kind = "final:" + x.Match
		}
		seq = append(seq, fmt.Sprintf("%d %s", x.Segment, kind))
	}
	if len(res) < 4 || !res[len(res)-1].Final || res[len(res)-1].Match != "en-manager" || res[len(res)-1].Segment != 1 {
		t.Errorf("two utterances: %v", seq)
	}
	for i, x := range res {
		if x.Final && (i == 0 || res[i-1].Final || res[i-1].Segment != x.Segment) {
			t.Errorf("final without a partial before it: %v", seq)
		}
	}
	other, err := speech.Synthesize(context.Background(), "en-us", "The weather in Hangzhou is lovely in the spring.", "")
	if err != nil {
		t.Fatal(err)
	}
	got := recognise(t, other, 7)
	if len(got) != 1 || got[0].Text != speech.Unintelligible || got[0].Confidence > 0.2 {
		t.Errorf("unknown speech: %+v", got)
	}
}

// TestDistances logs how far apart the catalogue's entries are (the margin of the matcher).
func TestDistances(t *testing.T) {
	t.Parallel()
	cat := speech.Catalogue()
	for _, a := range cat {
		for _, b := range cat {
			if a.ID < b.ID {
				d := speech.Distance(speech.Dequantize(a.Print), speech.Dequantize(b.Print))
				t.Logf("%s ~ %s: %.2f", a.ID, b.ID, d)
			}
		}
	}
}

// BenchmarkMatch measures matching one utterance against the catalogue.
func BenchmarkMatch(b *testing.B) {
	cat := speech.Catalogue()
	p := speech.Dequantize(cat[0].Print)
	for b.Loop() {
		speech.Match(p, cat)
	}
}

// TestPartials: a long utterance gets partials with a growing prefix of its text while it is
// spoken.
func TestPartials(t *testing.T) {
	t.Parallel()
	audio := synth(t)
	u, _ := speech.Find("zh-double-charge")
	r := speech.NewRecognizer(speech.Catalogue())
	res := r.Write(append(append(make([]byte, 8000), ulaw(audio[u.ID])...), make([]byte, 2*8000)...))
	var partials []string
	for _, x := range res {
		if !x.Final && x.Text != u.Text {
			partials = append(partials, x.Text)
		}
	}
	if len(partials) < 3 {
		t.Fatalf("partials %q", partials)
	}
	for i, p := range partials {
		if !strings.HasPrefix(u.Text, p) || (i > 0 && len(p) < len(partials[i-1])) {
			t.Errorf("partials %q: not growing prefixes of %q", partials, u.Text)
		}
	}
}
