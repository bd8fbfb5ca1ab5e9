package nls

// Recording file transcription (录音文件识别, nls-filetrans 2018-08-17; vendors part 2 §3.5):
//
//	POST /sandbox/nls/filetrans/   op "SubmitTask"     (filetrans.cn-shanghai.aliyuncs.com)
//	GET  /sandbox/nls/filetrans/   op "GetTaskResult"
//
// Both check the RPC V1 signature (the same AccessKey as CreateToken), the action, the version
// and a timestamp within 15 minutes. SubmitTask takes the Task JSON (appkey must be the
// project's, file_link an http(s) URL, version 4.0) and downloads the file in the background:
// a WAV (16-bit PCM or G.711, 8 or 16 kHz, any channels) whose every channel goes through the
// sandbox's recogniser (package speech), so the sentences are the catalogue's text of the audio,
// each with its channel and its begin and end in ms. GetTaskResult answers QUEUEING, then
// RUNNING, then (no sooner than FileTransDelay after the submit) SUCCESS with the sentences in
// time order, or FILE_DOWNLOAD_FAILED / FILE_DECODE_FAILED. Faults answer a POP error with the
// fault's HTTP status ("" = 500 InternalError, "429" = 429 Throttling.User).

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/aliyun"
	"github.com/omnibus-dev/omnibus/pkg/wire/wavfile"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
	"github.com/omnibus-dev/omnibus/services/sandbox/speech"
)

// File transcription ops (fault keys "nls SubmitTask", "nls GetTaskResult").
const (
	OpSubmitTask    = "SubmitTask"
	OpGetTaskResult = "GetTaskResult"
)

// fileTask is one submitted task.
type fileTask struct {
	submitted time.Time
	polls     int
	done      bool
	status    string
	code      int
	sentences []aliyun.Sentence
}

func (s *Sim) mountFileTrans() {
	fail := func(w http.ResponseWriter, _ *http.Request, code string) {
		st, retry := sim.FaultStatus(code)
		c := "InternalError"
		if st == http.StatusTooManyRequests {
			c = "Throttling.User"
			w.Header().Set("Retry-After", retry)
		}
		s.popError(w, st, c, "injected fault")
	}
	s.env.Handle(sim.Route{Vendor: Vendor, Op: OpSubmitTask, Pattern: "POST /filetrans/{$}", Handler: s.submitTask, Fail: fail})
	s.env.Handle(sim.Route{Vendor: Vendor, Op: OpGetTaskResult, Pattern: "GET /filetrans/{$}", Handler: s.getTaskResult, Fail: fail})
}

// checkPOP verifies an RPC V1 request of action; it answers the error itself and returns false.
func (s *Sim) checkPOP(w http.ResponseWriter, r *http.Request, action string) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.popError(w, http.StatusBadRequest, "InvalidParameter", err.Error())
		return false
	}
	p := r.Form
	_, err := aliyun.VerifyV1(r.Method, p, func(id string) (string, bool) { return s.cfg.AccessKeySecret, id == s.cfg.AccessKeyID })
	ts, terr := time.Parse("2006-01-02T15:04:05Z", p.Get("Timestamp"))
	switch {
	case errors.Is(err, aliyun.ErrUnknownAccessKey):
		s.popError(w, http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	case errors.Is(err, aliyun.ErrSignature):
		s.popError(w, http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature does not match our calculation. server string to sign is:"+aliyun.StringToSignV1(r.Method, p))
	case err != nil:
		s.popError(w, http.StatusBadRequest, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
	case terr != nil || s.cfg.Now().Sub(ts).Abs() > 15*time.Minute:
		s.popError(w, http.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	case p.Get("Action") != action || p.Get("Version") != aliyun.FileTransVersion:
		s.popError(w, http.StatusBadRequest, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
	default:
		return true
	}
	s.env.Record(Vendor, action, p.Get("AccessKeyId"), map[string]string{"action": p.Get("Action")}, errors.New("refused"))
	return false
}

func (s *Sim) submitTask(w http.ResponseWriter, r *http.Request) {
	if !s.checkPOP(w, r, aliyun.ActionSubmitTask) {
		return
	}
	var task aliyun.FileTransTask
	if err := json.Unmarshal([]byte(r.Form.Get("Task")), &task); err != nil {
		s.popError(w, http.StatusBadRequest, "InvalidParameter", "Task is not JSON: "+err.Error())
		return
	}
	resp := aliyun.SubmitTaskResponse{RequestID: hex32()}
	switch {
	case task.AppKey != s.cfg.AppKey:
		resp.StatusText, resp.StatusCode = "APPKEY_NOT_EXIST", 41050008
	case !strings.HasPrefix(task.FileLink, "http://") && !strings.HasPrefix(task.FileLink, "https://"):
		resp.StatusText, resp.StatusCode = "FILE_LINK_INVALID", 41050004
	case task.Version != aliyun.FileTransTaskVersion:
		resp.StatusText, resp.StatusCode = "VERSION_INVALID", 41050003
	default:
		resp.TaskID, resp.StatusText, resp.StatusCode = hex32(), aliyun.FileTransSuccess, aliyun.FileTransSubmitOK
		ft := &fileTask{submitted: s.cfg.Now()}
		s.mu.Lock()
		s.files[resp.TaskID] = ft
		s.mu.Unlock()
		s.g.Go(func(ctx context.Context) { s.transcribe(ctx, resp.TaskID, ft, task.FileLink) })
	}
	var err error
	if resp.TaskID == "" {
		err = errors.New(resp.StatusText)
	}
	s.env.Record(Vendor, OpSubmitTask, resp.TaskID, task, err)
	sim.WriteJSON(w, http.StatusOK, "application/json;charset=utf-8", resp)
}

// transcribe downloads the file and recognises every channel.
func (s *Sim) transcribe(ctx context.Context, id string, ft *fileTask, link string) {
	finish := func(status string, code int, sentences []aliyun.Sentence) {
		s.mu.Lock()
		ft.done, ft.status, ft.code, ft.sentences = true, status, code, sentences
		s.mu.Unlock()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		finish("FILE_DOWNLOAD_FAILED", 41050002, nil)
		return
	}
	resp, err := s.env.Client.Do(req)
	if err != nil {
		finish("FILE_DOWNLOAD_FAILED", 41050002, nil)
		return
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		finish("FILE_DOWNLOAD_FAILED", 41050002, nil)
		return
	}
	sentences, err := Recognise(body)
	if err != nil {
		finish("FILE_DECODE_FAILED", 41050005, nil)
		return
	}
	finish(aliyun.FileTransSuccess, 21050000, sentences)
}

// Recognise is the simulated engine: the sentences of a WAV file's channels, in time order.
func Recognise(file []byte) ([]aliyun.Sentence, error) {
	info, chans, err := wavfile.Decode(file)
	if err != nil {
		return nil, err
	}
	if info.SampleRate != speech.Rate && info.SampleRate != 2*speech.Rate {
		return nil, fmt.Errorf("sample rate %d", info.SampleRate)
	}
	var out []aliyun.Sentence
	for ch, pcm := range chans {
		b := make([]byte, 2*len(pcm))
		for i, v := range pcm {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		}
		if info.SampleRate == 2*speech.Rate {
			b = speech.Decimate2(b)
		}
		rec := speech.NewRecognizer(speech.Catalogue())
		for _, r := range append(rec.Write(b), rec.Flush()...) {
			if r.Final {
				out = append(out, aliyun.Sentence{BeginTime: r.Begin.Milliseconds(), EndTime: r.End.Milliseconds(), Text: r.Text,
					ChannelID: ch, SpeechRate: 180, EmotionValue: 5})
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].BeginTime < out[j].BeginTime })
	return out, nil
}

func (s *Sim) getTaskResult(w http.ResponseWriter, r *http.Request) {
	if !s.checkPOP(w, r, aliyun.ActionGetTaskResult) {
		return
	}
	id := r.Form.Get("TaskId")
	s.mu.Lock()
	ft := s.files[id]
	resp := aliyun.GetTaskResultResponse{TaskID: id, RequestID: hex32()}
	switch {
	case ft == nil:
		resp.StatusText, resp.StatusCode = "TASK_NOT_EXIST", 41050007
	case ft.polls == 0 && s.cfg.FileTransDelay > 0:
		resp.StatusText, resp.StatusCode = aliyun.FileTransQueueing, 21050002
	case !ft.done || s.cfg.Now().Sub(ft.submitted) < s.cfg.FileTransDelay:
		resp.StatusText, resp.StatusCode = aliyun.FileTransRunning, 21050001
	default:
		resp.StatusText, resp.StatusCode = ft.status, ft.code
		if ft.status == aliyun.FileTransSuccess {
			resp.Result = &aliyun.FileTransResult{Sentences: append([]aliyun.Sentence{}, ft.sentences...)}
			resp.BizDuration = 0
		}
	}
	if ft != nil {
		ft.polls++
	}
	s.mu.Unlock()
	s.env.Record(Vendor, OpGetTaskResult, id, map[string]any{"status": resp.StatusText, "result": resp.Result}, nil)
	sim.WriteJSON(w, http.StatusOK, "application/json;charset=utf-8", resp)
}
