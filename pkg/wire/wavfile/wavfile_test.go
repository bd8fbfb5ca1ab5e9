package wavfile

import (
	"errors"
	"slices"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	a, b := []int16{1, -2, 3, 32767}, []int16{-32768, 5}
	file := EncodePCM(8000, a, b)
	info, ch, err := Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	if info.Channels != 2 || info.SampleRate != 8000 || info.Frames != 4 || len(file) != 44+16 {
		t.Fatalf("%+v", info)
	}
	if !slices.Equal(ch[0], a) || !slices.Equal(ch[1], []int16{-32768, 5, 0, 0}) {
		t.Fatalf("%v", ch)
	}
	if d := (Info{SampleRate: 8000, Frames: 16000}).DurationMS(); d != 2000 {
		t.Fatal(d)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(EncodePCM(8000, []int16{1, 2, 3}))
	f.Add(EncodePCM(16000, []int16{1}, []int16{2}))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, ch, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrNotWAV) {
				t.Fatalf("error %v does not wrap ErrNotWAV", err)
			}
			return
		}
		if len(ch) != info.Channels || int64(len(ch[0])) != info.Frames {
			t.Fatalf("%+v but %d channels", info, len(ch))
		}
	})
}
