package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/omnibus-dev/omnibus/pkg/blobstore"
	"github.com/omnibus-dev/omnibus/pkg/httpguard"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

// Recordings serves call recordings from the voice connector's bucket to the desk's pages. A
// recording is reached only through a link the API signs (HMAC-SHA256 of the call id and an
// expiry, with a key that lives as long as the process) when it answers an agent allowed to see
// the conversation: the link is the credential, so an <audio> element can play it, and it
// expires after TTL. Recording URLs outside the bucket are refused.
type Recordings struct {
	Bucket *blob.Bucket
	Base   string // blobstore.Open's base: recording URLs are Base + "/" + key
	Key    []byte
	TTL    time.Duration
	Now    func() time.Time // default time.Now
}

func (rec *Recordings) now() time.Time {
	if rec.Now != nil {
		return rec.Now()
	}
	return time.Now()
}

func (rec *Recordings) sign(callID string, exp int64) string {
	m := hmac.New(sha256.New, rec.Key)
	fmt.Fprintf(m, "%s\n%d", callID, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// Link is the signed link of call callID's recording, valid for TTL.
func (rec *Recordings) Link(callID string) string {
	exp := rec.now().Add(rec.TTL).Unix()
	return fmt.Sprintf("/api/recordings/%s?exp=%d&sig=%s", callID, exp, rec.sign(callID, exp))
}

// signLinks sets the play links of the calls among items.
func (a *API) signLinks(items []store.TimelineItem) {
	if a.Recordings == nil {
		return
	}
	for _, it := range items {
		if c := it.Call; c != nil && c.RecordingURL != "" {
			c.PlayURL = a.Recordings.Link(c.CallID)
		}
	}
}

// recording streams a recording to the holder of a valid link (Range requests included, for
// seeking in the player).
func (a *API) recording(w http.ResponseWriter, r *http.Request) {
	rec := a.Recordings
	if rec == nil {
		fail(w, http.StatusNotFound, "recordings are not served by this desk (DESK_RECORDING_BUCKET is not set)")
		return
	}
	id := r.PathValue("call")
	exp, err := strconv.ParseInt(r.URL.Query().Get("exp"), 10, 64)
	sig, herr := hex.DecodeString(r.URL.Query().Get("sig"))
	want, _ := hex.DecodeString(rec.sign(id, exp))
	switch {
	case err != nil || herr != nil || !hmac.Equal(sig, want):
		fail(w, http.StatusForbidden, "the link is not signed by this desk")
		return
	case rec.now().Unix() > exp:
		fail(w, http.StatusForbidden, "the link has expired: reload the conversation for a new one")
		return
	}
	u, err := a.Store.RecordingURL(r.Context(), id)
	if err != nil {
		a.internal(w, r, err)
		return
	}
	key, kerr := blobstore.Key(rec.Base, u)
	if u == "" || kerr != nil {
		fail(w, http.StatusNotFound, "the call has no recording in the recordings bucket")
		return
	}
	rd, err := rec.Bucket.NewReader(r.Context(), key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		fail(w, http.StatusNotFound, "the recording is not in the bucket (retention may have removed it)")
		return
	}
	if err != nil {
		a.internal(w, r, err)
		return
	}
	defer rd.Close()
	// A long call to a slow network may outlast HTTP_WRITE_TIMEOUT: the link's signature and
	// expiry bound the download instead.
	httpguard.Stream(w)
	w.Header().Set("Content-Type", "audio/wav")
	w.Header().Set("Cache-Control", "private, max-age=300")
	http.ServeContent(w, r, "", rd.ModTime(), rd)
}
