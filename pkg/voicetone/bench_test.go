package voicetone_test

import (
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/voicetone"
)

// ulawDecode is the G.711 µ-law expansion table (what the voice connector does to every RTP
// payload before anything else sees it).
var ulawDecode = func() (t [256]int16) {
	for i := range t {
		u := ^byte(i)
		mag := ((int(u&0x0f) << 3) + 0x84) << ((u >> 4) & 7)
		v := int16(mag - 0x84)
		if u&0x80 != 0 {
			v = -v
		}
		t[i] = v
	}
	return t
}()

func ulawEncode(s int16) byte {
	best, bestD := 0, 1<<30
	for i, v := range ulawDecode {
		if d := abs(int(v) - int(s)); d < bestD {
			best, bestD = i, d
		}
	}
	return byte(best)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// BenchmarkToneFrame measures the tone analysis of a 20 ms frame of speech-like audio against
// merely decoding that frame from µ-law, in the same run, interleaved in blocks of 50 frames so
// that both see the same load: decode-ns/frame is the decode alone, tone-ns/frame the analysis
// alone, x-decode their ratio.
func BenchmarkToneFrame(b *testing.B) {
	speech := voice(2*time.Second, 170, -15, 4)
	ul := make([]byte, len(speech))
	for i, s := range speech {
		ul[i] = ulawEncode(s)
	}
	nf := len(ul) / voicetone.FrameSamples
	const block = 50
	decoded := make([]int16, block*voicetone.FrameSamples)
	var a voicetone.Analyzer
	var sink float32
	var decode, tone time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		t0 := time.Now()
		for k := range n {
			p := ul[((done+k)%nf)*voicetone.FrameSamples:][:voicetone.FrameSamples]
			out := decoded[k*voicetone.FrameSamples:][:voicetone.FrameSamples]
			for j, c := range p {
				out[j] = ulawDecode[c]
			}
		}
		t1 := time.Now()
		for k := range n {
			sink += a.Samples(decoded[k*voicetone.FrameSamples:][:voicetone.FrameSamples]).F0
		}
		t2 := time.Now()
		decode += t1.Sub(t0)
		tone += t2.Sub(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(decode.Nanoseconds())/float64(b.N), "decode-ns/frame")
	b.ReportMetric(float64(tone.Nanoseconds())/float64(b.N), "tone-ns/frame")
	if decode > 0 {
		b.ReportMetric(float64(tone)/float64(decode), "x-decode")
	}
	if sink == 0.5 {
		b.Log(sink)
	}
}

// BenchmarkToneSegment measures a 3 s segment's features and tone from its frames.
func BenchmarkToneSegment(b *testing.B) {
	fr := frames(voice(3*time.Second, 170, -15, 4))
	base := voicetone.Measure(fr)
	b.ReportAllocs()
	for b.Loop() {
		_ = voicetone.Compare(voicetone.Measure(fr), base)
	}
}
