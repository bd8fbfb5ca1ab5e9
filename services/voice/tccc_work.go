package voice

// The after-call work of TCCC calls: recordings downloaded (through the tccc/recording route)
// into the connector's bucket, then sent to Aliyun recording-file transcription (SubmitTask,
// then GetTaskResult until SUCCESS) and published as final transcript segments, after the
// call's ended event. The work of a call is kept in the voice_tccc bucket (key call.<id>, plus
// job.<id> while some is pending), so a vendor that is down delays it (backoff up to 5 min,
// VOICE_TCCC_MAX_ATTEMPTS attempts) and a restart resumes it.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"gocloud.dev/blob"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
	"github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/pkg/wire/wavfile"
	"github.com/omnibus-dev/omnibus/services/voice/internal/asr"
)

// File kinds of a TCCC call.
const (
	fileCall        = "call"        // the call's recording (CDR RecordURL): transcribed
	fileVoicemail   = "voicemail"   // a voicemail: transcribed
	fileParticipant = "participant" // one participant's recording (record push): stored only
)

// maxRecording caps a downloaded recording (about 9 hours of 8 kHz 16-bit stereo).
const maxRecording = 512 << 20

// tcccFile is one recording of a call and the work on it.
type tcccFile struct {
	Kind       string    `json:"kind"`
	URL        string    `json:"url"`
	Who        string    `json:"who,omitempty"` // the participant (phone or agent mail) of a pushed file
	Name       string    `json:"name"`          // in the blob key and the segment ids
	Key        string    `json:"key,omitempty"` // blob key, once stored
	Stored     bool      `json:"stored,omitempty"`
	Transcribe bool      `json:"transcribe,omitempty"`
	Seg0       int       `json:"seg0"`              // segment id of its first sentence
	TaskID     string    `json:"task_id,omitempty"` // the filetrans task in progress
	Done       bool      `json:"done,omitempty"`    // transcript published (or given up)
	Attempts   int       `json:"attempts,omitempty"`
	NextAt     time.Time `json:"next_at,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	GaveUp     bool      `json:"gave_up,omitempty"`
}

// pending reports whether work remains on f.
func (f *tcccFile) pending() bool {
	return !f.GaveUp && (!f.Stored || f.Transcribe && !f.Done)
}

// failed counts a failed attempt and schedules the next one (doubling from the work interval up
// to 5 min), or gives the file up after cfg.MaxAttempts.
func (f *tcccFile) failed(now time.Time, cfg *TCCCConfig, err error) {
	f.Attempts++
	f.LastError = err.Error()
	if len(f.LastError) > 512 {
		f.LastError = f.LastError[:512]
	}
	if f.Attempts >= cfg.MaxAttempts {
		f.GaveUp = true
		return
	}
	d := cfg.WorkInterval << min(f.Attempts, 20)
	f.NextAt = now.Add(min(d, 5*time.Minute))
}

// tcccState is a call as the bucket keeps it.
type tcccState struct {
	Call      tcccCall   `json:"call"`
	Published bool       `json:"published"`
	Files     []tcccFile `json:"files,omitempty"`
}

// add appends f unless a file of its kind and URL is there; it names f and numbers its
// segments.
func (st *tcccState) add(f tcccFile) {
	n := 0
	for _, g := range st.Files {
		if g.Kind == f.Kind && g.URL == f.URL {
			return
		}
		if g.Kind == f.Kind {
			n++
		}
	}
	switch f.Kind {
	case fileCall:
		f.Name = "call"
		if n > 0 {
			f.Name += "-" + strconv.Itoa(n+1)
		}
		f.Seg0 = 100000 * n
	case fileVoicemail:
		f.Name = "voicemail-" + strconv.Itoa(n+1)
		f.Seg0 = 1000 * (n + 1)
	default:
		h := sha256.Sum256([]byte(f.URL))
		f.Name = "part-" + hex.EncodeToString(h[:4])
	}
	st.Files = append(st.Files, f)
}

func (st *tcccState) pending() bool {
	for i := range st.Files {
		if st.Files[i].pending() {
			return true
		}
	}
	return false
}

func callKey(id string) string { return "call." + id }
func jobKey(id string) string  { return "job." + id }

// load returns the call's state (nil if unknown) and its revision.
func (t *tccc) load(ctx context.Context, id string) (*tcccState, uint64, error) {
	e, err := t.kv.Get(ctx, callKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var st tcccState
	if err := jsonUnmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("call state %s: %w", id, err)
	}
	return &st, e.Revision(), nil
}

// update applies change to the call's state (created if unknown) with optimistic concurrency,
// and keeps its job key while work remains.
func (t *tccc) update(ctx context.Context, id string, change func(*tcccState)) error {
	for attempt := 0; ; attempt++ {
		st, rev, err := t.load(ctx, id)
		if err != nil {
			return err
		}
		if st == nil {
			st = &tcccState{}
		}
		change(st)
		if rev == 0 {
			_, err = t.kv.Create(ctx, callKey(id), marshal(st))
		} else {
			_, err = t.kv.Update(ctx, callKey(id), marshal(st), rev)
		}
		if err != nil {
			if attempt < 5 && (errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")) {
				continue
			}
			return err
		}
		if st.Published && st.pending() {
			_, err = t.kv.Put(ctx, jobKey(id), nil)
		} else if st.Published {
			err = t.kv.Delete(ctx, jobKey(id))
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				err = nil
			}
		}
		return err
	}
}

// ---- recordings ----

// download fetches a recording through the tccc/recording route; the audit record has the
// status, not the audio.
func (t *tccc) download(ctx context.Context, callID, u string) ([]byte, string, error) {
	type got struct {
		body  []byte
		ctype string
	}
	g, err := resilience.Do(ctx, t.fetch, resilience.Call{CorrelationID: callID, Key: callID}, func(ctx context.Context, a *resilience.Attempt) (got, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return got{}, bus.Permanent(err)
		}
		resp, err := t.client.Do(req)
		if err != nil {
			return got{}, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
			a.Response(resp.StatusCode, "", nil)
			return got{}, fmt.Errorf("recording answered %d", resp.StatusCode)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxRecording+1))
		if err != nil {
			return got{}, err
		}
		a.Response(resp.StatusCode, "", nil)
		if len(b) > maxRecording {
			return got{}, bus.Permanent(fmt.Errorf("recording larger than %d bytes", maxRecording))
		}
		return got{b, resp.Header.Get("Content-Type")}, nil
	})
	return g.body, g.ctype, err
}

// store downloads f and uploads it to the bucket under tccc/<yyyy/mm/dd>/<call id>/<name>.<ext>;
// talkMS stands in for the duration of an MP3 (which is not decoded).
func (t *tccc) store(ctx context.Context, c tcccCall, f *tcccFile, talkMS int64) (recordedLeg, error) {
	if f.Name == "" {
		f.Name = f.Kind
	}
	body, ctype, err := t.download(ctx, c.ID, f.URL)
	if err != nil {
		return recordedLeg{}, err
	}
	leg := recordedLeg{Leg: "call", SampleRate: 8000, Bytes: int64(len(body)), DurationMS: max(talkMS, 0)}
	if f.Kind == fileVoicemail {
		leg.Leg = "voicemail"
	}
	ext := ""
	if info, err := wavfile.Parse(body); err == nil {
		leg.Format, leg.SampleRate, leg.DurationMS, ext = "audio/wav", info.SampleRate, info.DurationMS(), ".wav"
	} else if isMP3(body, ctype, f.URL) {
		leg.Format, ext = "audio/mpeg", ".mp3"
	} else {
		return recordedLeg{}, bus.Permanent(fmt.Errorf("recording %s is neither WAV nor MP3 (Content-Type %q)", redactURL(f.URL), ctype))
	}
	if leg.Bytes < 44 {
		return recordedLeg{}, bus.Permanent(fmt.Errorf("recording %s is empty", redactURL(f.URL)))
	}
	day := c.StartedAt
	if day.IsZero() {
		day = t.now()
	}
	k := "tccc/" + day.UTC().Format("2006/01/02") + "/" + c.ID + "/" + f.Name + ext
	if err := t.s.rec.bucket.Upload(ctx, k, bytes.NewReader(body), &blob.WriterOptions{ContentType: leg.Format}); err != nil {
		return recordedLeg{}, fmt.Errorf("upload %s: %w", k, err)
	}
	f.Key, f.Stored = k, true
	leg.URL = t.s.rec.base + "/" + k
	return leg, nil
}

func isMP3(b []byte, ctype, u string) bool {
	if bytes.HasPrefix(b, []byte("ID3")) || len(b) > 1 && b[0] == 0xFF && b[1]&0xE0 == 0xE0 {
		return true
	}
	if strings.HasPrefix(ctype, "audio/mpeg") || strings.HasPrefix(ctype, "audio/mp3") {
		return true
	}
	p, err := url.Parse(u)
	return err == nil && strings.EqualFold(path.Ext(p.Path), ".mp3")
}

// redactURL drops a URL's query (a signed COS link's credentials) for logs and errors.
func redactURL(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// ---- the worker ----

// work runs the pending after-call work every VOICE_TCCC_WORK_INTERVAL, and when a push or a
// reconciliation adds some.
func (t *tccc) work(ctx context.Context) error {
	tick := time.NewTicker(t.cfg.WorkInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-t.wake:
		}
		if err := t.workOnce(ctx); err != nil && ctx.Err() == nil {
			t.rt.Log.Warn("TCCC after-call work", "err", err)
		}
	}
}

func (t *tccc) workOnce(ctx context.Context) error {
	lister, err := t.kv.ListKeysFiltered(ctx, "job.>")
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil
		}
		return err
	}
	var ids []string
	for k := range lister.Keys() {
		ids = append(ids, strings.TrimPrefix(k, "job."))
	}
	_ = lister.Stop()
	for _, id := range ids {
		if ctx.Err() != nil {
			return nil
		}
		if err := t.workCall(ctx, id); err != nil && ctx.Err() == nil {
			t.rt.Log.Warn("TCCC call work", "call_id", id, "err", err)
		}
	}
	return nil
}

// workCall advances the work of one call: each due file is stored, then its transcription
// submitted, polled and published.
func (t *tccc) workCall(ctx context.Context, id string) error {
	st, _, err := t.load(ctx, id)
	if err != nil || st == nil || !st.Published {
		return err
	}
	now := t.now()
	changed := map[int]tcccFile{}
	for i := range st.Files {
		f := st.Files[i]
		if !f.pending() || now.Before(f.NextAt) {
			continue
		}
		t.advance(ctx, st.Call, &f)
		changed[i] = f
	}
	if len(changed) == 0 {
		return nil
	}
	// The transcription is over with this round: say how it ended before the state records it
	// (a failed publish leaves the round to be done again; the event's id makes it once).
	wasPending := transcribing(st.Files)
	for i, f := range changed {
		st.Files[i] = f
	}
	if wasPending && !transcribing(st.Files) {
		if err := t.publishTranscribed(ctx, st.Call, st.Files); err != nil {
			return fmt.Errorf("transcription outcome not published: %w", err)
		}
	}
	return t.update(ctx, id, func(cur *tcccState) {
		for i, f := range changed {
			if i < len(cur.Files) && cur.Files[i].URL == f.URL && cur.Files[i].Kind == f.Kind {
				cur.Files[i] = f
			}
		}
	})
}

func (t *tccc) advance(ctx context.Context, c tcccCall, f *tcccFile) {
	log := t.rt.Log.With("call_id", c.ID, "file", f.Name)
	if !f.Stored {
		if _, err := t.store(ctx, c, f, 0); err != nil {
			f.failed(t.now(), t.cfg, err)
			if f.GaveUp {
				log.Error("TCCC recording given up", "attempts", f.Attempts, "err", err)
			}
			return
		}
		log.Info("TCCC recording stored", "key", f.Key)
	}
	if !f.Transcribe || f.Done {
		return
	}
	if f.TaskID == "" {
		id, err := t.submitTask(ctx, c.ID, f.URL)
		if err != nil {
			f.failed(t.now(), t.cfg, err)
			if f.GaveUp {
				log.Error("TCCC transcription given up: the call stays without a transcript", "attempts", f.Attempts, "err", err)
			}
			return
		}
		f.TaskID = id
	}
	res, err := t.taskResult(ctx, c.ID, f.TaskID)
	switch {
	case err != nil:
		f.failed(t.now(), t.cfg, err)
	case res.Pending():
		return
	case res.StatusText != aliyun.FileTransSuccess:
		f.TaskID = "" // the task failed: submit a new one next time
		f.failed(t.now(), t.cfg, fmt.Errorf("transcription task ended %s (%d)", res.StatusText, res.StatusCode))
	default:
		if err := t.publishTranscript(ctx, c, f, res.Result.Sentences); err != nil {
			f.failed(t.now(), t.cfg, err)
			return
		}
		f.Done = true
		log.Info("TCCC transcript published", "sentences", len(res.Result.Sentences))
		return
	}
	if f.GaveUp {
		log.Error("TCCC transcription given up: the call stays without a transcript", "attempts", f.Attempts, "err", f.LastError)
	}
}

// vendorReply is an API answer as callAPI read it.
type vendorReply struct {
	Status int
	Code   string
	Body   []byte
}

// callAPI makes one vendor API call through route, like resilience.Route.HTTP, except for what
// the audit record keeps: not the bodies, which carry customers' numbers, signed recording links
// and what they said, but summary(status, body) of the answer and reqSummary of the request.
func (t *tccc) callAPI(ctx context.Context, route *resilience.Route, call resilience.Call, reqSummary []byte,
	newReq func(ctx context.Context) (*http.Request, error), codeOf func(body []byte) string,
	summary func(body []byte) []byte) (vendorReply, error) {
	return resilience.Do(ctx, route, call, func(ctx context.Context, a *resilience.Attempt) (vendorReply, error) {
		req, err := newReq(ctx)
		if err != nil {
			return vendorReply{}, bus.Permanent(fmt.Errorf("build request: %w", err))
		}
		a.Request(reqSummary)
		resp, err := t.client.Do(req)
		if err != nil {
			return vendorReply{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, resilience.MaxResponseBody+1))
		if err != nil {
			return vendorReply{}, err
		}
		if len(body) > resilience.MaxResponseBody {
			return vendorReply{}, bus.Permanent(fmt.Errorf("answer exceeds %d bytes", resilience.MaxResponseBody))
		}
		r := vendorReply{Status: resp.StatusCode, Code: codeOf(body), Body: body}
		a.Response(r.Status, r.Code, summary(body))
		if r.Status == http.StatusTooManyRequests || r.Status == http.StatusServiceUnavailable {
			if d, ok := resilience.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
				a.RetryAfter(d)
			}
		}
		return r, nil
	})
}

// popCode reads the Code of an Aliyun POP error answer.
func popCode(body []byte) string { return resilience.JSONCode("Code")(0, nil, body) }

// summaryJSON keeps the named top-level fields of a JSON answer (nothing else reaches the audit).
func summaryJSON(fields ...string) func([]byte) []byte {
	return func(body []byte) []byte {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			return nil
		}
		out := map[string]json.RawMessage{}
		for _, f := range fields {
			if v, ok := m[f]; ok {
				out[f] = v
			}
		}
		return marshal(out)
	}
}

func nonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (t *tccc) aliyunCreds() (id, secret, appKey string) {
	c := t.s.cfg
	return c.AliyunAccessKeyID, c.AliyunAccessSecret, c.AliyunAppKey
}

func (t *tccc) submitTask(ctx context.Context, callID, fileLink string) (string, error) {
	id, secret, appKey := t.aliyunCreds()
	reply, err := t.callAPI(ctx, t.submit, resilience.Call{CorrelationID: callID, Key: callID},
		marshal(map[string]string{"Action": aliyun.ActionSubmitTask, "appkey": appKey, "file_link": redactURL(fileLink)}),
		func(ctx context.Context) (*http.Request, error) {
			p, err := aliyun.SubmitTaskParams(id, secret, nonce(), t.now(), aliyun.FileTransTask{AppKey: appKey, FileLink: fileLink,
				Version: aliyun.FileTransTaskVersion, EnableSampleRateAdaptive: true})
			if err != nil {
				return nil, err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.FileTransURL, strings.NewReader(p.Encode()))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req, nil
		}, popCode, summaryJSON("TaskId", "StatusText", "StatusCode", "RequestId", "Code", "Message"))
	if err != nil {
		return "", err
	}
	var resp aliyun.SubmitTaskResponse
	if err := json.Unmarshal(reply.Body, &resp); err != nil {
		return "", fmt.Errorf("SubmitTask answer: %w", err)
	}
	if resp.StatusText != aliyun.FileTransSuccess || resp.TaskID == "" {
		return "", fmt.Errorf("SubmitTask answered %s (%d) %s", resp.StatusText, resp.StatusCode, resp.Message)
	}
	return resp.TaskID, nil
}

func (t *tccc) taskResult(ctx context.Context, callID, taskID string) (aliyun.GetTaskResultResponse, error) {
	id, secret, _ := t.aliyunCreds()
	reply, err := t.callAPI(ctx, t.result, resilience.Call{CorrelationID: callID, Key: callID},
		marshal(map[string]string{"Action": aliyun.ActionGetTaskResult, "TaskId": taskID}),
		func(ctx context.Context) (*http.Request, error) {
			q := aliyun.GetTaskResultParams(id, secret, nonce(), t.now(), taskID)
			sep := "?"
			if strings.Contains(t.cfg.FileTransURL, "?") {
				sep = "&"
			}
			return http.NewRequestWithContext(ctx, http.MethodGet, t.cfg.FileTransURL+sep+q.Encode(), nil)
		}, popCode, func(body []byte) []byte {
			// The status and how many sentences: the text is what the customer said.
			r, err := aliyun.ParseGetTaskResult(body)
			if err != nil {
				return summaryJSON("Code", "Message", "RequestId")(body)
			}
			n := 0
			if r.Result != nil {
				n = len(r.Result.Sentences)
			}
			return marshal(map[string]any{"TaskId": r.TaskID, "StatusText": r.StatusText, "StatusCode": r.StatusCode, "Sentences": n})
		})
	if err != nil {
		return aliyun.GetTaskResultResponse{}, err
	}
	return aliyun.ParseGetTaskResult(reply.Body)
}

// speakerOf is whose audio a sentence of f is, in the legs' terms of the SIP path (caller: the
// customer's audio, callee: the agent's), which the unifier reads so: a voicemail is the
// customer's; of the call's recording, channel 0 is the customer and any other the agent.
func speakerOf(f *tcccFile, channel int) string {
	if f.Kind == fileVoicemail || channel == 0 {
		return "caller"
	}
	return "callee"
}

// publishTranscript publishes the sentences, in time order, as final segments.
func (t *tccc) publishTranscript(ctx context.Context, c tcccCall, f *tcccFile, sentences []aliyun.Sentence) error {
	sorted := append([]aliyun.Sentence(nil), sentences...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].BeginTime != sorted[j].BeginTime {
			return sorted[i].BeginTime < sorted[j].BeginTime
		}
		return sorted[i].ChannelID < sorted[j].ChannelID
	})
	source := "recording"
	if f.Kind == fileVoicemail {
		source = "voicemail"
	}
	var out []bus.Outgoing
	for i, s := range sorted {
		text := s.Text
		if utf8.RuneCountInString(text) > maxText {
			text = string([]rune(text)[:maxText])
		}
		d := map[string]any{"channel": "voice", "call_id": c.ID, "segment_id": f.Seg0 + i, "speaker": speakerOf(f, s.ChannelID),
			"start_ms": s.BeginTime, "end_ms": s.EndTime, "text": text, "final": true, "vendor": "aliyun", "model": "filetrans",
			"source": source}
		e, err := t.rt.NewEvent(TypeSegment, d, event.WithID(fmt.Sprintf("voice:%s:%s:seg%d", c.ID, f.Name, i)),
			event.WithPartitionKey(c.partitionKey()), event.WithSubject(c.ID))
		if err != nil {
			return err
		}
		out = append(out, bus.Outgoing{Subject: SubjectTranscript, Event: e})
	}
	if len(out) == 0 {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return t.rt.PublishChunks(pctx, out)
}

// transcribing reports whether some file of files is still to be transcribed (or stored, then
// transcribed).
func transcribing(files []tcccFile) bool {
	for i := range files {
		if files[i].Transcribe && files[i].pending() {
			return true
		}
	}
	return false
}

// transcribedFile is one entry of omni.channel.call.transcribed's files.
type transcribedFile struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Outcome  string `json:"outcome"` // transcribed or given_up
	Attempts int    `json:"attempts"`
}

// transcriptState is the transcript state of a call whose files to transcribe are all over
// (transcribed or given up), and each such file's outcome.
func transcriptState(files []tcccFile) (string, []transcribedFile) {
	var out []transcribedFile
	done := 0
	for _, f := range files {
		if !f.Transcribe {
			continue
		}
		outcome := "given_up"
		if f.Done && !f.GaveUp {
			outcome = "transcribed"
			done++
		}
		out = append(out, transcribedFile{Name: f.Name, Kind: f.Kind, Outcome: outcome, Attempts: f.Attempts})
	}
	switch done {
	case len(out):
		return asr.Complete, out
	case 0:
		return asr.None, out
	}
	return asr.Partial, out
}

// publishTranscribed publishes how a call's after-call transcription ended: complete when every
// file to transcribe was, none when every one was given up, partial in between — the transcript
// state the SIP path's ended event carries, so a vendor down past the retries is said, not
// silent.
func (t *tccc) publishTranscribed(ctx context.Context, c tcccCall, files []tcccFile) error {
	state, out := transcriptState(files)
	if state != asr.Complete {
		t.rt.Log.Warn("TCCC transcription over with files given up", "call_id", c.ID, "transcript", state)
	}
	now := t.now().UTC()
	e, err := t.rt.NewEvent(TypeTranscribed, map[string]any{"channel": "voice", "call_id": c.ID, "provider": providerTCCC,
		"transcript": state, "files": out, "at": now}, event.WithID("voice:"+c.ID+":transcribed"),
		event.WithPartitionKey(c.partitionKey()), event.WithTime(now), event.WithSubject(c.ID))
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return t.rt.Publish(pctx, bus.Outgoing{Subject: SubjectTranscription, Event: e})
}
