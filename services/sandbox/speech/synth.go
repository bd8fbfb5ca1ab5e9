package speech

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// ErrNoTTS is returned by Synthesize when espeak-ng or sox is not installed.
var ErrNoTTS = errors.New("speech: espeak-ng and sox are needed to synthesise utterances (apt-get install espeak-ng sox)")

// Synthesize speaks text with espeak-ng's voice and converts it with sox to 8 kHz mono 16-bit
// PCM. It returns the raw samples (little-endian) and writes the same audio as a WAV file to
// wavPath when that is not empty (what a SIP caller plays).
func Synthesize(ctx context.Context, voice, text, wavPath string) ([]byte, error) {
	return synthesize(ctx, []string{"-v", voice}, text, wavPath)
}

// SynthesizeUtterance speaks a catalogue utterance with its voice and prosody (amplitude, pitch
// and speed, when set), as Synthesize does.
func SynthesizeUtterance(ctx context.Context, u Utterance, wavPath string) ([]byte, error) {
	args := []string{"-v", u.Voice}
	for _, o := range []struct {
		flag string
		v    int
	}{{"-a", u.Amplitude}, {"-p", u.Pitch}, {"-s", u.Speed}} {
		if o.v != 0 {
			args = append(args, o.flag, strconv.Itoa(o.v))
		}
	}
	return synthesize(ctx, args, u.Text, wavPath)
}

func synthesize(ctx context.Context, args []string, text, wavPath string) ([]byte, error) {
	for _, tool := range []string{"espeak-ng", "sox"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, ErrNoTTS
		}
	}
	dir, err := os.MkdirTemp("", "speech")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	raw := filepath.Join(dir, "espeak.wav")
	if b, err := exec.CommandContext(ctx, "espeak-ng", append(args, "-w", raw, text)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("espeak-ng: %w: %s", err, bytes.TrimSpace(b))
	}
	conv := []string{raw, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"}
	if wavPath != "" {
		if b, err := exec.CommandContext(ctx, "sox", append(conv, wavPath)...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("sox: %w: %s", err, bytes.TrimSpace(b))
		}
	}
	pcm, err := exec.CommandContext(ctx, "sox", append(conv, "-t", "raw", "-")...).Output()
	if err != nil {
		return nil, fmt.Errorf("sox: %w", err)
	}
	return pcm, nil
}
