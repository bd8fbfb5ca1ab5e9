package asr_test

import (
	"errors"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/voice/internal/asr"
)

const (
	rtasrFinal   = `{"action":"result","code":"0","data":"{\"cn\":{\"st\":{\"bg\":\"820\",\"ed\":\"2300\",\"type\":\"0\",\"rt\":[{\"ws\":[{\"cw\":[{\"w\":\"北京\",\"wp\":\"n\"}],\"wb\":0,\"we\":40},{\"cw\":[{\"w\":\"。\",\"wp\":\"p\"}],\"wb\":0,\"we\":0}]}]}},\"seg_id\":5}\n","desc":"success","sid":"rta0000000a@ch312c0e3f63609f0900"}`
	rtasrPartial = `{"action":"result","code":"0","data":"{\"cn\":{\"st\":{\"bg\":\"820\",\"ed\":\"0\",\"type\":\"1\",\"rt\":[{\"ws\":[{\"cw\":[{\"w\":\"啊\",\"wp\":\"n\"}],\"wb\":0,\"we\":0},{\"cw\":[{\"w\":\"！\",\"wp\":\"p\"}],\"wb\":0,\"we\":0}]}]}},\"seg_id\":5}\n","desc":"success","sid":"rta0000000a"}`
	rtasrError   = `{"action":"error","code":"10110","data":"","desc":"invalid authorization|illegal signa","sid":"rta0000000b"}`
	nlsEnd       = `{"header":{"namespace":"SpeechTranscriber","name":"SentenceEnd","status":20000000,"message_id":"105705062ddf466794adfc166aa5334e","task_id":"73b50bc1a6684072b9e117a3307fcf42","status_text":"Gateway:SUCCESS:Success."},"payload":{"index":1,"time":2520,"begin_time":880,"result":"北京的天气。","confidence":0.872,"words":[],"status":0,"gender":"","fixed_result":"","unfixed_result":"","stash_result":{"sentenceId":2,"beginTime":2520,"text":"","fixedText":"","unfixedText":"","currentTime":2520,"words":[]},"audio_extra_info":"","sentence_id":"5495a7dd10e0405fbd3424e4d0249b55","gender_score":0.0}}`
	nlsChanged   = `{"header":{"namespace":"SpeechTranscriber","name":"TranscriptionResultChanged","status":20000000,"message_id":"a","task_id":"b","status_text":"Gateway:SUCCESS:Success."},"payload":{"index":1,"time":1800,"result":"北京的","words":[]}}`
	nlsFailed    = `{"header":{"namespace":"SpeechTranscriber","name":"TaskFailed","status":40000004,"message_id":"a","task_id":"b","status_text":"Gateway:IDLE_TIMEOUT:Websocket session is idle for too long time"}}`
	nlsCompleted = `{"header":{"namespace":"SpeechTranscriber","name":"TranscriptionCompleted","status":20000000,"message_id":"a","task_id":"b","status_text":"Gateway:SUCCESS:Success."}}`
)

func TestDecodeRTASR(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     asr.Result
		ok       bool
		code     string
		bad      bool
	}{
		{name: "final", in: rtasrFinal, ok: true, want: asr.Result{Segment: 5, Begin: 820 * time.Millisecond, End: 2300 * time.Millisecond, Text: "北京。", Final: true, Confidence: -1}},
		{name: "partial", in: rtasrPartial, ok: true, want: asr.Result{Segment: 5, Begin: 820 * time.Millisecond, End: 820 * time.Millisecond, Text: "啊！", Confidence: -1}},
		{name: "started", in: `{"action":"started","code":"0","data":"","desc":"success","sid":"x"}`},
		{name: "error", in: rtasrError, code: "10110"},
		{name: "translation", in: `{"action":"result","code":"0","data":"{\"biz\":\"trans\",\"dst\":\"x\",\"segId\":1,\"type\":0}"}`},
		{name: "not json", in: `{"action":`, bad: true},
		{name: "data not json", in: `{"action":"result","code":"0","data":"{"}`, bad: true},
		{name: "no seg_id", in: `{"action":"result","code":"0","data":"{\"cn\":{\"st\":{\"bg\":\"0\",\"ed\":\"0\",\"type\":\"1\"}}}"}`, bad: true},
		{name: "bad type", in: `{"action":"result","code":"0","data":"{\"cn\":{\"st\":{\"bg\":\"0\",\"ed\":\"0\",\"type\":\"7\"}},\"seg_id\":0}"}`, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, ok, err := asr.DecodeRTASR([]byte(tc.in))
			check(t, r, ok, err, tc.want, tc.ok, tc.code, tc.bad)
		})
	}
}

func TestDecodeNLS(t *testing.T) {
	t.Parallel()
	conf := 0.872
	for _, tc := range []struct {
		name, in string
		want     asr.Result
		ok, last bool
		code     string
		bad      bool
	}{
		{name: "sentence end", in: nlsEnd, ok: true, want: asr.Result{Segment: 0, Begin: 880 * time.Millisecond, End: 2520 * time.Millisecond, Text: "北京的天气。", Final: true, Confidence: conf}},
		{name: "changed", in: nlsChanged, ok: true, want: asr.Result{Segment: 0, Text: "北京的", Confidence: -1}},
		{name: "failed", in: nlsFailed, code: "40000004"},
		{name: "completed", in: nlsCompleted, last: true},
		{name: "unknown event", in: `{"header":{"name":"Whatever","status":20000000}}`, bad: true},
		{name: "index 0", in: `{"header":{"name":"SentenceEnd","status":20000000},"payload":{"index":0}}`, bad: true},
		{name: "not json", in: `[`, bad: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, ok, last, err := asr.DecodeNLS([]byte(tc.in))
			if last != tc.last {
				t.Errorf("last = %v", last)
			}
			check(t, r, ok, err, tc.want, tc.ok, tc.code, tc.bad)
		})
	}
}

func check(t *testing.T, r asr.Result, ok bool, err error, want asr.Result, wantOK bool, code string, bad bool) {
	t.Helper()
	var ve *asr.VendorError
	switch {
	case bad:
		if !errors.Is(err, asr.ErrMalformed) {
			t.Fatalf("err = %v, want ErrMalformed", err)
		}
	case code != "":
		if !errors.As(err, &ve) || ve.Code != code {
			t.Fatalf("err = %v, want vendor code %s", err, code)
		}
	case err != nil:
		t.Fatal(err)
	case ok != wantOK || r != want:
		t.Fatalf("got %+v %v, want %+v %v", r, ok, want, wantOK)
	}
}

// FuzzDecodeRTASR: any frame decodes to a result, nothing, a vendor error or ErrMalformed, and a
// result's times are ordered.
func FuzzDecodeRTASR(f *testing.F) {
	for _, s := range []string{rtasrFinal, rtasrPartial, rtasrError, `{"action":"started"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok, err := asr.DecodeRTASR(b)
		invariant(t, r, ok, err)
	})
}

// FuzzDecodeNLS: the same for the NLS events.
func FuzzDecodeNLS(f *testing.F) {
	for _, s := range []string{nlsEnd, nlsChanged, nlsFailed, nlsCompleted} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok, _, err := asr.DecodeNLS(b)
		invariant(t, r, ok, err)
	})
}

func invariant(t *testing.T, r asr.Result, ok bool, err error) {
	var ve *asr.VendorError
	if err != nil && !errors.Is(err, asr.ErrMalformed) && !errors.As(err, &ve) {
		t.Fatalf("unexpected error kind %T: %v", err, err)
	}
	if ok && (err != nil || r.Segment < 0 || r.Begin < 0 || r.End < r.Begin || r.Confidence > 1) {
		t.Fatalf("bad result %+v (%v)", r, err)
	}
}

// TestHandshakeURL: the A.1 inputs give the documented signa, URL-encoded, with the lang (a
// dialect's console value) and pd options.
func TestHandshakeURL(t *testing.T) {
	t.Parallel()
	c := &asr.IFlytek{URL: "wss://rtasr.xfyun.cn/v1/ws", AppID: "595f23df", APIKey: "d9f4aa7ea6d94faca62cd88a28fd5234",
		Lang: "cn_cantonese", PD: "edu"}
	got := c.HandshakeURL(time.Unix(1512041814, 0))
	want := "wss://rtasr.xfyun.cn/v1/ws?appid=595f23df&lang=cn_cantonese&pd=edu&signa=IrrzsJeOFk1NGfJHW6SkHUoN9CU%3D&ts=1512041814"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}
