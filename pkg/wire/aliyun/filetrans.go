package aliyun

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Recording file transcription (录音文件识别, product nls-filetrans 2018-08-17; vendors part 2
// §3.5): an RPC API signed with V1 (HMAC-SHA1). SubmitTask (POST, form parameter Task, a JSON
// string) queues the transcription of a file the vendor downloads from file_link; GetTaskResult
// (GET, TaskId) answers QUEUEING or RUNNING until the task is done, then SUCCESS with the
// sentences (per channel, begin and end in ms), or another StatusText for a failure.
const (
	FileTransHost    = "filetrans.cn-shanghai.aliyuncs.com"
	FileTransVersion = "2018-08-17"
	FileTransRegion  = "cn-shanghai"

	ActionSubmitTask    = "SubmitTask"
	ActionGetTaskResult = "GetTaskResult"

	// FileTransTaskVersion is the Task's version, the one recommended for new integrations.
	FileTransTaskVersion = "4.0"

	// StatusText values.
	FileTransSuccess  = "SUCCESS"
	FileTransRunning  = "RUNNING"
	FileTransQueueing = "QUEUEING"
	// StatusCode of an accepted SubmitTask [unconfirmed: from the number-privacy ASR doc].
	FileTransSubmitOK = 21050000
)

// ErrFileTrans is wrapped by the filetrans parsers for an answer that is not the documented
// shape.
var ErrFileTrans = errors.New("aliyun: malformed filetrans answer")

// FileTransTask is SubmitTask's Task parameter.
type FileTransTask struct {
	AppKey                   string `json:"appkey"`
	FileLink                 string `json:"file_link"`
	Version                  string `json:"version"`
	EnableWords              bool   `json:"enable_words,omitempty"`
	EnableSampleRateAdaptive bool   `json:"enable_sample_rate_adaptive,omitempty"`
	AutoSplit                bool   `json:"auto_split,omitempty"`
	EnableCallback           bool   `json:"enable_callback,omitempty"`
	CallbackURL              string `json:"callback_url,omitempty"`
}

// SubmitTaskParams returns the signed form of a SubmitTask POST.
func SubmitTaskParams(accessKeyID, secret, nonce string, at time.Time, task FileTransTask) (url.Values, error) {
	b, err := json.Marshal(task)
	if err != nil {
		return nil, err
	}
	p := RPCParams(ActionSubmitTask, FileTransVersion, accessKeyID, nonce, at)
	p.Set("RegionId", FileTransRegion)
	p.Set("Task", string(b))
	p.Set("Signature", SignV1("POST", p, secret))
	return p, nil
}

// GetTaskResultParams returns the signed query of a GetTaskResult GET.
func GetTaskResultParams(accessKeyID, secret, nonce string, at time.Time, taskID string) url.Values {
	p := RPCParams(ActionGetTaskResult, FileTransVersion, accessKeyID, nonce, at)
	p.Set("RegionId", FileTransRegion)
	p.Set("TaskId", taskID)
	p.Set("Signature", SignV1("GET", p, secret))
	return p
}

// SubmitTaskResponse is SubmitTask's answer.
type SubmitTaskResponse struct {
	TaskID     string `json:"TaskId"`
	RequestID  string `json:"RequestId"`
	StatusText string `json:"StatusText"`
	StatusCode int    `json:"StatusCode"`
	Code       string `json:"Code,omitempty"`
	Message    string `json:"Message,omitempty"`
}

// Sentence is one recognised sentence of a file: BeginTime and EndTime in ms from the file's
// start, ChannelId the audio channel (0 the first), SpeechRate characters per minute,
// EmotionValue 1-10, SilenceDuration seconds of silence before it. The vendor's casing of these
// names is unconfirmed (§3.5); the documented capitalised one is what is sent and read.
type Sentence struct {
	BeginTime       int64   `json:"BeginTime"`
	EndTime         int64   `json:"EndTime"`
	Text            string  `json:"Text"`
	ChannelID       int     `json:"ChannelId"`
	SpeechRate      int     `json:"SpeechRate,omitempty"`
	EmotionValue    float64 `json:"EmotionValue,omitempty"`
	SilenceDuration int64   `json:"SilenceDuration,omitempty"`
}

// FileTransResult is the Result of a finished task.
type FileTransResult struct {
	Sentences []Sentence `json:"Sentences"`
}

// GetTaskResultResponse is GetTaskResult's answer; Result is set when StatusText is SUCCESS.
type GetTaskResultResponse struct {
	TaskID      string           `json:"TaskId"`
	RequestID   string           `json:"RequestId"`
	StatusText  string           `json:"StatusText"`
	StatusCode  int              `json:"StatusCode"`
	BizDuration int64            `json:"BizDuration,omitempty"`
	SolveTime   int64            `json:"SolveTime,omitempty"`
	Result      *FileTransResult `json:"Result,omitempty"`
	Code        string           `json:"Code,omitempty"`
	Message     string           `json:"Message,omitempty"`
}

// Pending reports whether the task is still queued or running.
func (r GetTaskResultResponse) Pending() bool {
	return r.StatusText == FileTransRunning || r.StatusText == FileTransQueueing
}

// ParseGetTaskResult decodes a GetTaskResult answer. A SUCCESS must carry a Result whose
// sentences have 0 <= BeginTime <= EndTime and a channel >= 0; anything else that is neither
// pending nor success is returned as it is (the caller reads StatusText as the failure).
func ParseGetTaskResult(body []byte) (GetTaskResultResponse, error) {
	var r GetTaskResultResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return r, fmt.Errorf("%w: %w", ErrFileTrans, err)
	}
	if r.StatusText == "" {
		return r, fmt.Errorf("%w: no StatusText", ErrFileTrans)
	}
	if r.StatusText != FileTransSuccess {
		return r, nil
	}
	if r.Result == nil {
		return r, fmt.Errorf("%w: SUCCESS without Result", ErrFileTrans)
	}
	for i, s := range r.Result.Sentences {
		if s.BeginTime < 0 || s.EndTime < s.BeginTime || s.ChannelID < 0 {
			return r, fmt.Errorf("%w: sentence %d has times %d-%d, channel %d", ErrFileTrans, i, s.BeginTime, s.EndTime, s.ChannelID)
		}
	}
	return r, nil
}
