package voice

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

func TestTCCCConfigValidate(t *testing.T) {
	t.Parallel()
	base := map[string]string{"VOICE_TCCC_SDK_APP_ID": "1400000001", "VOICE_TCCC_PUSH_USER": "u", "VOICE_TCCC_PUSH_PASSWORD": "p",
		"VOICE_TCCC_SECRET_ID": "id", "VOICE_TCCC_SECRET_KEY": "key", "VOICE_ALIYUN_ACCESS_KEY_ID": "a",
		"VOICE_ALIYUN_ACCESS_KEY_SECRET": "s", "VOICE_ALIYUN_APPKEY": "k"}
	for name, tc := range map[string]struct {
		env  map[string]string
		want string // fragment of the error; "" = valid
	}{
		"off by default":           {map[string]string{"VOICE_TCCC_SDK_APP_ID": ""}, ""},
		"configured":               {nil, ""},
		"basic without password":   {map[string]string{"VOICE_TCCC_PUSH_PASSWORD": ""}, "VOICE_TCCC_PUSH_PASSWORD"},
		"oauth2 short secret":      {map[string]string{"VOICE_TCCC_PUSH_AUTH": "oauth2", "VOICE_TCCC_OAUTH_CLIENT_ID": "c", "VOICE_TCCC_OAUTH_CLIENT_SECRET": "short"}, "16 characters"},
		"unknown auth":             {map[string]string{"VOICE_TCCC_PUSH_AUTH": "oauth"}, `did you mean "oauth2"`},
		"none":                     {map[string]string{"VOICE_TCCC_PUSH_AUTH": "none"}, ""},
		"reconcile without keys":   {map[string]string{"VOICE_TCCC_SECRET_KEY": ""}, "VOICE_TCCC_SECRET_ID"},
		"reconcile off, no keys":   {map[string]string{"VOICE_TCCC_SECRET_KEY": "", "VOICE_TCCC_RECONCILE_INTERVAL": "0"}, ""},
		"window shorter":           {map[string]string{"VOICE_TCCC_RECONCILE_WINDOW": "1m"}, "at least one interval"},
		"retention within window":  {map[string]string{"VOICE_TCCC_STATE_RETENTION": "2h"}, "longer than VOICE_TCCC_RECONCILE_WINDOW"},
		"transcribe without ali":   {map[string]string{"VOICE_ALIYUN_APPKEY": ""}, "VOICE_TCCC_TRANSCRIBE needs"},
		"no transcription, no ali": {map[string]string{"VOICE_ALIYUN_APPKEY": "", "VOICE_TCCC_TRANSCRIBE": "false"}, ""},
		"bad api url":              {map[string]string{"VOICE_TCCC_API_URL": "ccc.tencentcloudapi.com"}, "VOICE_TCCC_API_URL"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.env {
			env[k] = v
		}
		var cfg Config
		err := config.Load(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok && v != "" })
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: err %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestTCCCMappings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ side, dir, want string }{
		{"seat", "inbound", "agent"}, {"user", "inbound", "caller"}, {"user", "outbound", "callee"}, {"system", "inbound", "system"}, {"", "outbound", "system"},
	} {
		if got := hangupSide(tc.side, tc.dir); got != tc.want {
			t.Errorf("hangupSide(%q, %q) = %q, want %q", tc.side, tc.dir, got, tc.want)
		}
	}
	first, again := TCCCCallID(1, "s"), TCCCCallID(1, "s")
	if first != again || first == TCCCCallID(2, "s") || len(first) != 36 {
		t.Error("call ids are not a function of SdkAppId and SessionId")
	}
	var st tcccState
	st.add(tcccFile{Kind: fileCall, URL: "u1"})
	st.add(tcccFile{Kind: fileCall, URL: "u1"})
	st.add(tcccFile{Kind: fileVoicemail, URL: "v1"})
	st.add(tcccFile{Kind: fileVoicemail, URL: "v2"})
	st.add(tcccFile{Kind: fileParticipant, URL: "u1"})
	if len(st.Files) != 4 || st.Files[0].Name != "call" || st.Files[1].Seg0 != 1000 || st.Files[2].Name != "voicemail-2" ||
		st.Files[2].Seg0 != 2000 || !strings.HasPrefix(st.Files[3].Name, "part-") {
		t.Fatalf("%+v", st.Files)
	}
	if speakerOf(&st.Files[0], 1) != "callee" || speakerOf(&st.Files[0], 0) != "caller" || speakerOf(&st.Files[1], 1) != "caller" {
		t.Error("speakers")
	}
	cfg := &TCCCConfig{WorkInterval: time.Second, MaxAttempts: 3}
	f := tcccFile{}
	now := time.Unix(1000, 0)
	f.failed(now, cfg, errors.New("x"))
	if f.NextAt != now.Add(2*time.Second) || f.GaveUp {
		t.Fatalf("%+v", f)
	}
	f.failed(now, cfg, errors.New("x"))
	f.failed(now, cfg, errors.New("x"))
	if !f.GaveUp || f.pending() {
		t.Fatalf("%+v", f)
	}
}

func TestTCCCTokens(t *testing.T) {
	t.Parallel()
	now := time.Unix(1765100000, 0)
	tc := &tccc{tokenKey: []byte("k"), now: func() time.Time { return now }}
	tok := tc.issueToken(now.Add(time.Hour).Unix())
	if err := tc.checkToken(tok); err != nil {
		t.Fatal(err)
	}
	if err := tc.checkToken(tc.issueToken(now.Unix() - 1)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	other := &tccc{tokenKey: []byte("other"), now: tc.now}
	if err := tc.checkToken(other.issueToken(now.Add(time.Hour).Unix())); err == nil {
		t.Fatal("a token of another key verified")
	}
	for _, bad := range []string{"", ".", "abc.def", "1765103600"} {
		if tc.checkToken(bad) == nil {
			t.Fatalf("%q verified", bad)
		}
	}
}

func TestTranscriptState(t *testing.T) {
	t.Parallel()
	call := tcccFile{Kind: fileCall, Name: "call", Transcribe: true, Stored: true, Done: true}
	vm := tcccFile{Kind: fileVoicemail, Name: "voicemail-1", Transcribe: true, Stored: true, Done: true}
	part := tcccFile{Kind: fileParticipant, Name: "part-1a2b3c4d", Stored: true}
	gaveUp := func(f tcccFile, attempts int) tcccFile {
		f.Done, f.GaveUp, f.Attempts = false, true, attempts
		return f
	}
	notStored := func(f tcccFile) tcccFile { f.Stored, f.Done, f.GaveUp, f.Attempts = false, false, true, 12; return f }
	for _, tc := range []struct {
		name     string
		files    []tcccFile
		want     string
		outcomes []string
	}{
		{"all transcribed", []tcccFile{call, part, vm}, "complete", []string{"transcribed", "transcribed"}},
		{"voicemail given up", []tcccFile{call, gaveUp(vm, 12)}, "partial", []string{"transcribed", "given_up"}},
		{"recording never stored", []tcccFile{notStored(call), vm}, "partial", []string{"given_up", "transcribed"}},
		{"all given up", []tcccFile{gaveUp(call, 3), part}, "none", []string{"given_up"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, files := transcriptState(tc.files)
			var outcomes []string
			for _, f := range files {
				outcomes = append(outcomes, f.Outcome)
			}
			if got != tc.want || !slices.Equal(outcomes, tc.outcomes) {
				t.Errorf("transcriptState = %s %v, want %s %v", got, outcomes, tc.want, tc.outcomes)
			}
		})
	}
}
