package voice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob" // s3:// buckets: AWS S3 and S3-compatible stores (Aliyun OSS, MinIO) via ?endpoint=

	"github.com/omnibus-dev/omnibus/pkg/blobstore"
	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
	"github.com/omnibus-dev/omnibus/services/voice/internal/wav"
)

// recordings stores the legs of calls: written to the spool directory sample by sample while
// the call is up, finalised and uploaded to the bucket when it ends (or at the next start after
// a crash), then removed from the spool.
type recordings struct {
	spool  string
	bucket *blob.Bucket
	base   string // the bucket URL without query, prefix of the recording URLs
	log    *slog.Logger
}

func newRecordings(ctx context.Context, spool, bucketURL string, log *slog.Logger) (*recordings, error) {
	if err := os.MkdirAll(spool, 0o750); err != nil {
		return nil, fmt.Errorf("VOICE_SPOOL_DIR: %w", err)
	}
	b, base, err := blobstore.Open(ctx, bucketURL)
	if err != nil {
		return nil, fmt.Errorf("VOICE_RECORDING_BUCKET %q: %w", bucketURL, err)
	}
	return &recordings{spool: spool, bucket: b, base: base, log: log}, nil
}

func (r *recordings) Close() error { return r.bucket.Close() }

// spoolMeta is what the spool keeps of a call beside its legs, enough to publish its ended
// event after a crash.
type spoolMeta struct {
	Call       callInfo   `json:"call"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	// Transcribed says the caller leg streams to a live ASR vendor: a call recovered after a
	// crash then says transcript partial (final segments were published before it: the
	// "<id>.transcribed" marker) or none, not nothing.
	Transcribed bool `json:"transcribed,omitempty"`
}

func (r *recordings) metaPath(id string) string { return filepath.Join(r.spool, id+".json") }
func (r *recordings) markPath(id string) string { return filepath.Join(r.spool, id+".transcribed") }

// markTranscribed records in the spool that a final segment of call id was published (once per
// call: the caller keeps whether it did).
func (r *recordings) markTranscribed(id string) {
	f, err := os.OpenFile(r.markPath(id), os.O_CREATE|os.O_WRONLY, 0o640)
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		r.log.Warn("transcript marker not written", "call_id", id, "err", err)
	}
}

// transcribed reports whether a final segment of call id was published (markTranscribed).
func (r *recordings) transcribed(id string) bool {
	_, err := os.Stat(r.markPath(id))
	return err == nil
}
func (r *recordings) legPath(id string, leg media.Leg) string {
	return filepath.Join(r.spool, id+"."+string(leg)+".wav")
}

// writeMeta records the call in the spool (atomically: temp file + rename).
func (r *recordings) writeMeta(m spoolMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp := r.metaPath(m.Call.ID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, r.metaPath(m.Call.ID))
}

// legWriter is a Sink that writes one leg to the spool.
type legWriter struct {
	w   *wav.Writer
	err error
}

func (l *legWriter) Frame(f media.Frame) {
	if l.err == nil {
		_, l.err = l.w.Write(f.PCM)
	}
}

func (r *recordings) create(id string, leg media.Leg) (*legWriter, error) {
	w, err := wav.Create(r.legPath(id, leg), media.Rate)
	if err != nil {
		return nil, err
	}
	return &legWriter{w: w}, nil
}

// recordedLeg is one entry of the ended event's recording.legs.
type recordedLeg struct {
	Leg        media.Leg `json:"leg"`
	URL        string    `json:"url"`
	Format     string    `json:"format"`
	SampleRate int       `json:"sample_rate"`
	DurationMS int64     `json:"duration_ms"`
	Bytes      int64     `json:"bytes"`
}

// key is the blob key of a leg: day of the call, call id, leg.
func key(c callInfo, leg media.Leg) string {
	return c.StartedAt.UTC().Format("2006/01/02") + "/" + c.ID + "/" + string(leg) + ".wav"
}

// store uploads the finalised legs of a call found in the spool, and returns them. Legs
// without a sample are not stored.
func (r *recordings) store(ctx context.Context, c callInfo) ([]recordedLeg, error) {
	var out []recordedLeg
	for _, leg := range []media.Leg{media.LegCaller, media.LegCallee} {
		p := r.legPath(c.ID, leg)
		samples, rate, err := wav.Repair(p) // a no-op on a closed writer's file
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return out, err
		}
		if samples == 0 {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return out, err
		}
		k := key(c, leg)
		err = r.bucket.Upload(ctx, k, f, &blob.WriterOptions{ContentType: "audio/wav"})
		_ = f.Close()
		if err != nil {
			return out, fmt.Errorf("upload %s: %w", k, err)
		}
		out = append(out, recordedLeg{Leg: leg, URL: r.base + "/" + k, Format: "audio/wav", SampleRate: rate,
			DurationMS: samples * 1000 / int64(rate), Bytes: wav.HeaderSize + 2*samples})
	}
	return out, nil
}

// remove deletes a call's spool files once its ended event is published.
func (r *recordings) remove(id string) {
	for _, p := range []string{r.metaPath(id), r.legPath(id, media.LegCaller), r.legPath(id, media.LegCallee), r.markPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("spool file not removed", "path", p, "err", err)
		}
	}
}

// orphans returns the calls the spool holds (left by a crash when called at start).
func (r *recordings) orphans() ([]spoolMeta, error) {
	paths, err := filepath.Glob(filepath.Join(r.spool, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []spoolMeta
	for _, p := range paths {
		b, err := os.ReadFile(p)
		var m spoolMeta
		if err == nil {
			err = json.Unmarshal(b, &m)
		}
		if err != nil || m.Call.ID == "" || filepath.Base(p) != m.Call.ID+".json" {
			r.log.Error("unreadable spool file left alone", "path", p, "err", err)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

// lastWrite returns when a call's legs were last written (the end of a crashed call).
func (r *recordings) lastWrite(id string, fallback time.Time) time.Time {
	t := fallback
	for _, leg := range []media.Leg{media.LegCaller, media.LegCallee} {
		if st, err := os.Stat(r.legPath(id, leg)); err == nil && st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t
}

// expire deletes recordings older than retention; it returns how many it deleted.
func (r *recordings) expire(ctx context.Context, retention time.Duration, now time.Time) (int, error) {
	it := r.bucket.List(nil)
	n := 0
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if obj.IsDir || !obj.ModTime.Before(now.Add(-retention)) {
			continue
		}
		if err := r.bucket.Delete(ctx, obj.Key); err != nil {
			return n, err
		}
		n++
	}
}
