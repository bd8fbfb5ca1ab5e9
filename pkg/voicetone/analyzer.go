package voicetone

import (
	"encoding/binary"
	"math"
)

// Rate is the sample rate this package reads; FrameSamples is one 20 ms analysis frame.
const (
	Rate         = 8000
	FrameSamples = Rate / 50
)

// FrameDuration is the length of one frame in milliseconds.
const FrameDuration = 20

// Pitch search range and the YIN window.
const (
	minF0     = 60.0
	maxF0     = 400.0
	minLag    = Rate / 400        // 20 samples (maxF0)
	maxLag    = Rate/60 + 1       // 134 samples (minF0)
	window    = 2 * FrameSamples  // the previous frame and this one, 40 ms
	integrate = window - maxLag   // samples summed per lag
	yinThresh = 0.2               // a dip of the normalised difference below this is a period
	gateDBFS  = -50.0             // frames quieter than this are silence
	fullScale = 32768.0 * 32768.0 // power of a full-scale square wave
	silentDB  = -120.0            // the dBFS reported for digital silence
	voicedMin = gateDBFS + 6      // voiced frames must also be this loud
)

// Frame is what an [Analyzer] measures of one 20 ms frame.
type Frame struct {
	// Power is the mean square of the samples relative to full scale (1 = a full-scale square
	// wave, 0 = digital silence).
	Power float32
	// F0 is the fundamental frequency in Hz, 0 when the frame is not voiced.
	F0 float32
}

// DBFS returns the frame's level in dBFS: 20·log10(RMS / 32768), so a full-scale sine is
// −3 dBFS; digital silence is −120.
func (f Frame) DBFS() float64 { return dbfs(float64(f.Power)) }

// Active reports whether the frame is louder than the silence gate (−50 dBFS).
func (f Frame) Active() bool { return f.DBFS() > gateDBFS }

// Voiced reports whether a pitch was found in the frame.
func (f Frame) Voiced() bool { return f.F0 > 0 }

func dbfs(power float64) float64 {
	if power <= 0 {
		return silentDB
	}
	return max(silentDB, 10*math.Log10(power))
}

// Analyzer measures consecutive 20 ms frames of one stream. It keeps the previous frame (the
// pitch window spans two) and scratch space, so a frame costs no allocation. The zero value is
// ready; it is not safe for concurrent use.
type Analyzer struct {
	buf  [window]float32 // the previous frame, then the current one
	diff [maxLag + 1]float32
}

// Reset forgets the previous frame (the next frame starts a new stream).
func (a *Analyzer) Reset() { a.buf = [window]float32{} }

// Samples measures the next frame of exactly FrameSamples samples.
func (a *Analyzer) Samples(s []int16) Frame {
	_ = s[FrameSamples-1]
	copy(a.buf[:FrameSamples], a.buf[FrameSamples:])
	cur := a.buf[FrameSamples:]
	for i := range FrameSamples {
		cur[i] = float32(s[i])
	}
	return a.measure()
}

// PCM measures the next frame of exactly 2·FrameSamples bytes of little-endian 16-bit PCM.
func (a *Analyzer) PCM(b []byte) Frame {
	_ = b[2*FrameSamples-1]
	copy(a.buf[:FrameSamples], a.buf[FrameSamples:])
	cur := a.buf[FrameSamples:]
	for i := range FrameSamples {
		cur[i] = float32(int16(binary.LittleEndian.Uint16(b[2*i:])))
	}
	return a.measure()
}

func (a *Analyzer) measure() Frame {
	cur := a.buf[FrameSamples:]
	var sum float64
	for _, v := range cur {
		sum += float64(v) * float64(v)
	}
	f := Frame{Power: float32(sum / FrameSamples / fullScale)}
	if f.DBFS() < voicedMin {
		return f
	}
	f.F0 = a.pitch()
	return f
}

// pitch runs YIN over the window and returns F0, or 0 when no period is clear. It stops at the
// first dip below the threshold, so a high voice costs fewer lags than a low one.
func (a *Analyzer) pitch() float32 {
	x := a.buf[:]
	d := a.diff[:]
	d[0] = 1
	var running float32
	tau := -1
	for t := 1; t <= maxLag; t++ {
		s := sqdiff(x[:integrate], x[t:t+integrate])
		running += s
		if running == 0 {
			d[t] = 1
		} else {
			d[t] = s * float32(t) / running
		}
		if p := t - 1; p >= minLag && d[p] < yinThresh && d[t] >= d[p] {
			tau = p
			break
		}
	}
	if tau < 0 && d[maxLag] < yinThresh {
		tau = maxLag
	}
	if tau < 0 {
		return 0
	}
	// Parabolic interpolation around the dip.
	p := float32(tau)
	if tau > minLag && tau < maxLag {
		l, c, r := d[tau-1], d[tau], d[tau+1]
		if den := l - 2*c + r; den > 0 {
			p += (l - r) / (2 * den)
		}
	}
	f0 := Rate / p
	if f0 < minF0 || f0 > maxF0 {
		return 0
	}
	return f0
}

// sqdiff returns the sum of (x[i]-y[i])², four lanes at a time.
func sqdiff(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		e0, e1, e2, e3 := x[i]-y[i], x[i+1]-y[i+1], x[i+2]-y[i+2], x[i+3]-y[i+3]
		s0 += e0 * e0
		s1 += e1 * e1
		s2 += e2 * e2
		s3 += e3 * e3
	}
	for ; i < len(x); i++ {
		e := x[i] - y[i]
		s0 += e * e
	}
	return s0 + s1 + s2 + s3
}
