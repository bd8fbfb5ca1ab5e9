// Package voicetone measures the tone of a caller's voice on a phone call — how loud, how high
// and how fast they speak — and compares each stretch of speech with the caller's own opening:
// a customer who starts calm and then speaks louder, higher and faster is getting upset,
// whatever their natural voice. It reads 8 kHz 16-bit linear PCM (decoded G.711, what a call
// carries) and is pure Go, with no allocation per frame.
//
// Per 20 ms frame an [Analyzer] measures the power and, for voiced frames, the fundamental
// frequency F0 (YIN: the cumulative-mean-normalised difference function over a 40 ms window,
// 60–400 Hz, parabolic interpolation). Over a stretch of frames (an ASR segment) [Measure] gives
// [Features]: the energy in dBFS of the active frames, the median F0 of the voiced ones, and the
// speaking rate — syllable nuclei per second of active speech, a nucleus being a voiced rise of
// the loudness envelope by at least 3 dB out of a valley followed by a fall of 3 dB.
//
// [Compare] sets a segment's features against the caller's baseline (the features of their
// first seconds of speech) and scores the arousal in [0, 1]:
//
//	arousal = 0.45·ramp(ΔdB, 1, 9) + 0.35·ramp(Δst, 0.5, 6) + 0.20·ramp(Δrate%, 5, 40)
//
// where ramp(x, lo, hi) is 0 below lo, 1 above hi and linear between; ΔdB is the energy change,
// Δst the pitch change in semitones and Δrate% the speaking rate's change in percent. Quieter,
// lower or slower speech scores 0 on that component. When the pitch or the rate cannot be
// measured on either side (no voiced frame), its weight is shared among the others. The label is
// calm below 0.3, raised below 0.6, agitated from 0.6.
//
// A [Tracker] follows one leg of a call: it takes the leg's PCM as it arrives, keeps the frames'
// measures for the last two minutes, and answers the tone of a segment given by its start and
// end offsets into the leg. Its baseline is the caller's first three seconds of active speech,
// taken no further than the first segment that holds at least one second of speech — so an
// opening sentence that is calm is the reference, and the next, angry one is not part of it.
//
// The measures are relative on purpose: absolute loudness depends on the handset and the trunk,
// absolute pitch on the speaker. A caller who is already shouting in their first seconds has
// that as their baseline; this package does not detect them.
package voicetone
