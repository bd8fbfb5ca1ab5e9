// Package wavfile reads and writes whole RIFF/WAVE files of 16-bit PCM or G.711 (µ-law, A-law)
// audio with any number of interleaved channels: the recordings a cloud contact centre serves
// and a file-transcription vendor downloads. Streaming writers of the connectors' own recordings
// live with them (services/voice/internal/wav); this is the file as exchanged with a vendor.
package wavfile

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/zaf/g711"
)

// Format tags of the fmt chunk.
const (
	FormatPCM  = 1
	FormatALaw = 6
	FormatULaw = 7
)

// ErrNotWAV is wrapped for data that is not a WAVE file this package reads.
var ErrNotWAV = errors.New("wavfile: not a supported WAVE file")

// Info is what the fmt and data chunks say.
type Info struct {
	Format     int
	Channels   int
	SampleRate int
	// Frames is the number of samples per channel.
	Frames int64
	// DataOffset and DataBytes locate the audio in the file.
	DataOffset, DataBytes int64
}

// DurationMS is the audio's length in milliseconds.
func (i Info) DurationMS() int64 {
	if i.SampleRate <= 0 {
		return 0
	}
	return i.Frames * 1000 / int64(i.SampleRate)
}

// bytesPerSample is 2 for PCM, 1 for G.711.
func (i Info) bytesPerSample() int {
	if i.Format == FormatPCM {
		return 2
	}
	return 1
}

// Parse reads the header chunks of b (the data chunk may be cut short: Frames counts what is
// there).
func Parse(b []byte) (Info, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return Info{}, fmt.Errorf("%w: no RIFF/WAVE header", ErrNotWAV)
	}
	var info Info
	haveFmt := false
	for off := 12; off+8 <= len(b); {
		id, size := string(b[off:off+4]), int64(binary.LittleEndian.Uint32(b[off+4:]))
		body := int64(off + 8)
		switch id {
		case "fmt ":
			if size < 16 || body+16 > int64(len(b)) {
				return Info{}, fmt.Errorf("%w: short fmt chunk", ErrNotWAV)
			}
			f := b[body:]
			info.Format = int(binary.LittleEndian.Uint16(f[0:]))
			info.Channels = int(binary.LittleEndian.Uint16(f[2:]))
			info.SampleRate = int(binary.LittleEndian.Uint32(f[4:]))
			bits := int(binary.LittleEndian.Uint16(f[14:]))
			switch {
			case info.Format != FormatPCM && info.Format != FormatULaw && info.Format != FormatALaw:
				return Info{}, fmt.Errorf("%w: format tag %d", ErrNotWAV, info.Format)
			case info.Format == FormatPCM && bits != 16, info.Format != FormatPCM && bits != 8:
				return Info{}, fmt.Errorf("%w: %d bits per sample for format %d", ErrNotWAV, bits, info.Format)
			case info.Channels < 1 || info.Channels > 8:
				return Info{}, fmt.Errorf("%w: %d channels", ErrNotWAV, info.Channels)
			case info.SampleRate < 1000 || info.SampleRate > 192000:
				return Info{}, fmt.Errorf("%w: sample rate %d", ErrNotWAV, info.SampleRate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return Info{}, fmt.Errorf("%w: data before fmt", ErrNotWAV)
			}
			info.DataOffset = body
			info.DataBytes = min(size, int64(len(b))-body)
			info.Frames = info.DataBytes / int64(info.bytesPerSample()*info.Channels)
			return info, nil
		}
		next := body + size + size%2
		if next > int64(len(b)) || next <= int64(off) {
			break
		}
		off = int(next)
	}
	return Info{}, fmt.Errorf("%w: no data chunk", ErrNotWAV)
}

// Decode returns the file's audio as 16-bit samples, one slice per channel.
func Decode(b []byte) (Info, [][]int16, error) {
	info, err := Parse(b)
	if err != nil {
		return info, nil, err
	}
	data := b[info.DataOffset : info.DataOffset+info.DataBytes]
	out := make([][]int16, info.Channels)
	for c := range out {
		out[c] = make([]int16, info.Frames)
	}
	bps := info.bytesPerSample()
	for f := int64(0); f < info.Frames; f++ {
		for c := 0; c < info.Channels; c++ {
			i := (f*int64(info.Channels) + int64(c)) * int64(bps)
			switch info.Format {
			case FormatPCM:
				out[c][f] = int16(binary.LittleEndian.Uint16(data[i:]))
			case FormatULaw:
				out[c][f] = g711.DecodeUlawFrame(data[i])
			case FormatALaw:
				out[c][f] = g711.DecodeAlawFrame(data[i])
			}
		}
	}
	return info, out, nil
}

// EncodePCM returns a 16-bit PCM WAVE file of the channels (interleaved; the shorter ones are
// padded with silence).
func EncodePCM(rate int, channels ...[]int16) []byte {
	frames := 0
	for _, c := range channels {
		frames = max(frames, len(c))
	}
	n := len(channels)
	data := frames * n * 2
	b := make([]byte, 44+data)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], FormatPCM)
	binary.LittleEndian.PutUint16(b[22:], uint16(n))
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*n*2))
	binary.LittleEndian.PutUint16(b[32:], uint16(n*2))
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	for f := range frames {
		for c, ch := range channels {
			if f < len(ch) {
				binary.LittleEndian.PutUint16(b[44+(f*n+c)*2:], uint16(ch[f]))
			}
		}
	}
	return b
}
