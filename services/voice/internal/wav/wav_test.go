package wav

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestCloseAndRepair(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "a.wav")
	w, err := Create(p, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 1600)); err != nil {
		t.Fatal(err)
	}
	if err := w.Silence(800); err != nil {
		t.Fatal(err)
	}
	// A crash now: the header still says 0 samples. Append a torn sample too.
	if _, err := w.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	n, rate, err := Repair(p)
	if err != nil || n != 1600 || rate != 8000 {
		t.Fatalf("Repair = %d, %d, %v; want 1600 samples at 8000", n, rate, err)
	}
	b, _ := os.ReadFile(p)
	if n, _, err := Info(bytes.NewReader(b)); err != nil || n != 1600 || len(b) != HeaderSize+3200 {
		t.Fatalf("Info after repair = %d, %v, file %d bytes", n, err, len(b))
	}
	// Repairing again changes nothing; a file that is not ours is refused.
	if n, _, err := Repair(p); err != nil || n != 1600 {
		t.Fatalf("second Repair = %d, %v", n, err)
	}
	other := filepath.Join(dir, "b.wav")
	_ = os.WriteFile(other, []byte("RIFF....WAVEfmt nonsense that is long enough to be a header"), 0o600)
	if _, _, err := Repair(other); err == nil {
		t.Fatal("repaired a file that is not a PCM WAV")
	}
}

func TestWriterClose(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "c.wav")
	w, err := Create(p, 16000)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(make([]byte, 3201)) // a torn last sample is dropped at Close
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(p)
	defer f.Close()
	if n, rate, err := Info(f); err != nil || n != 1600 || rate != 16000 || w.Size() != HeaderSize+3200 {
		t.Fatalf("Info = %d, %d, %v; size %d", n, rate, err, w.Size())
	}
}
