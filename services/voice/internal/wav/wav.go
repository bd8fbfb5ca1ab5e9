// Package wav writes 16-bit PCM mono WAV files incrementally, so a file is playable up to the
// last sample written even when the writer never closed it: Repair rewrites the header of such a
// file from its size. It is the voice connector's recording format (see the voice package doc
// for why WAV and not Opus).
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// HeaderSize is the size of the canonical RIFF/WAVE header this package writes.
const HeaderSize = 44

// ErrNotWAV is returned by Repair and Info for a file that does not start with the header this
// package writes.
var ErrNotWAV = errors.New("not a 16-bit PCM mono WAV file of this package")

// Writer appends PCM samples to a WAV file. The header's sizes are zero until Close (or Repair).
// It is not safe for concurrent use.
type Writer struct {
	f     *os.File
	rate  int
	bytes int64 // PCM bytes written
}

// Create creates (or truncates) path and writes a header for sampleRate Hz, 16-bit, mono.
func Create(path string, sampleRate int) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(header(sampleRate, 0)); err != nil {
		_ = f.Close()
		return nil, err
	}
	return &Writer{f: f, rate: sampleRate}, nil
}

// Write appends little-endian 16-bit samples. Each call is one write(2): what it wrote is in
// the file (the page cache) even if the process dies right after.
func (w *Writer) Write(pcm []byte) (int, error) {
	n, err := w.f.Write(pcm)
	w.bytes += int64(n)
	return n, err
}

// Silence appends n samples of silence.
func (w *Writer) Silence(n int) error {
	const chunk = 1600
	zero := make([]byte, 2*min(n, chunk))
	for n > 0 {
		k := min(n, chunk)
		if _, err := w.Write(zero[:2*k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// Sync flushes the file to stable storage.
func (w *Writer) Sync() error { return w.f.Sync() }

// Samples returns how many samples were written.
func (w *Writer) Samples() int64 { return w.bytes / 2 }

// Size returns the size of the file once closed.
func (w *Writer) Size() int64 { return HeaderSize + w.bytes - w.bytes%2 }

// Close writes the final sizes into the header and closes the file.
func (w *Writer) Close() error {
	if w.bytes%2 != 0 { // a torn sample cannot be played; drop it
		w.bytes--
		if err := w.f.Truncate(HeaderSize + w.bytes); err != nil {
			_ = w.f.Close()
			return err
		}
	}
	_, err := w.f.WriteAt(header(w.rate, w.bytes), 0)
	if serr := w.f.Sync(); err == nil {
		err = serr
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Repair finalises a file a Writer did not close (the process died): it drops a torn last
// sample and writes the sizes into the header. It returns the number of samples and the sample
// rate. Repairing a closed file changes nothing.
func Repair(path string) (samples int64, rate int, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := make([]byte, HeaderSize)
	if _, err := io.ReadFull(f, h); err != nil {
		return 0, 0, fmt.Errorf("%w: %s: %w", ErrNotWAV, path, err)
	}
	rate, err = parseHeader(h)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	data := st.Size() - HeaderSize
	if data%2 != 0 {
		data--
		if err := f.Truncate(HeaderSize + data); err != nil {
			return 0, 0, err
		}
	}
	if _, err := f.WriteAt(header(rate, data), 0); err != nil {
		return 0, 0, err
	}
	return data / 2, rate, f.Sync()
}

// Info reads the header of a finalised file: its sample rate and number of samples.
func Info(r io.Reader) (samples int64, rate int, err error) {
	h := make([]byte, HeaderSize)
	if _, err := io.ReadFull(r, h); err != nil {
		return 0, 0, fmt.Errorf("%w: %w", ErrNotWAV, err)
	}
	rate, err = parseHeader(h)
	if err != nil {
		return 0, 0, err
	}
	return int64(binary.LittleEndian.Uint32(h[40:])) / 2, rate, nil
}

func parseHeader(h []byte) (int, error) {
	if string(h[0:4]) != "RIFF" || string(h[8:16]) != "WAVEfmt " || string(h[36:40]) != "data" ||
		binary.LittleEndian.Uint16(h[20:]) != 1 || binary.LittleEndian.Uint16(h[22:]) != 1 ||
		binary.LittleEndian.Uint16(h[34:]) != 16 {
		return 0, ErrNotWAV
	}
	rate := int(binary.LittleEndian.Uint32(h[24:]))
	if rate < 1000 || rate > 192000 {
		return 0, fmt.Errorf("%w: sample rate %d", ErrNotWAV, rate)
	}
	return rate, nil
}

func header(rate int, data int64) []byte {
	h := make([]byte, HeaderSize)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+data))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)             // fmt chunk size
	binary.LittleEndian.PutUint16(h[20:], 1)              // PCM
	binary.LittleEndian.PutUint16(h[22:], 1)              // mono
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))   // sample rate
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*2)) // byte rate
	binary.LittleEndian.PutUint16(h[32:], 2)              // block align
	binary.LittleEndian.PutUint16(h[34:], 16)             // bits per sample
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(data))
	return h
}
