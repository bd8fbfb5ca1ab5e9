package voice

import (
	"bytes"
	"context"
	"github.com/omnibus-dev/omnibus/pkg/blobstore"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"gocloud.dev/blob"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

func TestPartyIdentity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		user, host string
		kind, want string
	}{
		{"+8613800138000", "pbx", "phone", "+8613800138000"},
		{"008613800138000", "pbx", "phone", "+8613800138000"},
		{"8613800138000", "pbx", "phone", "+8613800138000"},
		{"13800138000", "pbx", "phone", "+8613800138000"},
		{"02112345678", "pbx", "phone", "+862112345678"},
		{"4008001234", "pbx", "phone", "+864008001234"},
		{"+86 138-0013-8000", "pbx", "phone", "+8613800138000"},
		{"1001", "pbx.local", "sip_uri", "sip:1001@pbx.local"},
		{"alice", "10.0.0.1", "sip_uri", "sip:alice@10.0.0.1"},
		{"", "10.0.0.1", "sip_uri", "sip:10.0.0.1"},
		{"+123", "pbx", "sip_uri", "sip:+123@pbx"},
		{"+0123456789", "pbx", "sip_uri", "sip:+0123456789@pbx"},
	} {
		got := partyIdentity(sip.Uri{User: tc.user, Host: tc.host}, "86")
		if got.Kind != tc.kind || got.Value != tc.want {
			t.Errorf("%q@%s: %+v, want %s %s", tc.user, tc.host, got, tc.kind, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string // fragment of the error; "" = valid
	}{
		{nil, ""},
		{map[string]string{"VOICE_SIP_LISTEN": "0.0.0.0:5060"}, "VOICE_MEDIA_IP"},
		{map[string]string{"VOICE_SIP_LISTEN": "0.0.0.0:5060", "VOICE_MEDIA_IP": "203.0.113.5"}, ""},
		{map[string]string{"VOICE_SIP_LISTEN": "pbx:5060"}, "VOICE_SIP_LISTEN"},
		{map[string]string{"VOICE_SIP_TRANSPORT": "tls"}, "udp or tcp"},
		{map[string]string{"VOICE_RTP_PORTS": "20000"}, "VOICE_RTP_PORTS"},
		{map[string]string{"VOICE_RTP_PORTS": "100-200"}, "VOICE_RTP_PORTS"},
		{map[string]string{"VOICE_ALLOW": "pbx.example.com"}, "neither a CIDR nor an IP"},
		{map[string]string{"VOICE_ALLOW": "192.0.2.7"}, ""},
		{map[string]string{"VOICE_DIGEST_USER": "pbx"}, "go together"},
		{map[string]string{"VOICE_CODECS": "PCMU,G729"}, "not PCMU or PCMA"},
		{map[string]string{"VOICE_RECORDING_RETENTION": "10m"}, "at least 1h"},
		{map[string]string{"VOICE_COUNTRY_CODE": "+86"}, "VOICE_COUNTRY_CODE"},
		{map[string]string{"VOICE_ASR": "iflytek"}, "VOICE_IFLYTEK_APP_ID"},
		{map[string]string{"VOICE_ASR": "aliyun", "VOICE_ALIYUN_ACCESS_KEY_ID": "k"}, "VOICE_ALIYUN_APPKEY"},
		{map[string]string{"VOICE_ASR": "ifly"}, `did you mean "iflytek"`},
		{map[string]string{"VOICE_ASR": "iflytek", "VOICE_IFLYTEK_APP_ID": "a", "VOICE_IFLYTEK_API_KEY": "k",
			"VOICE_IFLYTEK_URL": "https://rtasr.xfyun.cn/v1/ws"}, "ws:// or wss://"},
		{map[string]string{"VOICE_ASR": "iflytek", "VOICE_IFLYTEK_APP_ID": "a", "VOICE_IFLYTEK_API_KEY": "k"}, ""},
		{map[string]string{"VOICE_ASR": "iflytek", "VOICE_IFLYTEK_APP_ID": "a", "VOICE_IFLYTEK_API_KEY": "k", "VOICE_ASR_QUEUE": "2"}, "VOICE_ASR_QUEUE"},
	} {
		var cfg Config
		err := config.Load(&cfg, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.env, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: err %v, want it to mention %q", tc.env, err, tc.want)
		}
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rec, err := newRecordings(context.Background(), filepath.Join(dir, "spool"), "file://"+filepath.Join(dir, "rec"),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	ctx := context.Background()
	for _, k := range []string{"2026/01/01/a/caller.wav", "2026/12/07/b/caller.wav"} {
		if err := rec.bucket.Upload(ctx, k, bytes.NewReader([]byte("x")), &blob.WriterOptions{ContentType: "audio/wav"}); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-100 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "rec", "2026/01/01/a/caller.wav"), old, old); err != nil {
		t.Fatal(err)
	}
	n, err := rec.expire(ctx, 90*24*time.Hour, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("expire = %d, %v; want 1 deleted", n, err)
	}
	if ok, _ := rec.bucket.Exists(ctx, "2026/12/07/b/caller.wav"); !ok {
		t.Fatal("a recent recording was deleted")
	}
	if ok, _ := rec.bucket.Exists(ctx, "2026/01/01/a/caller.wav"); ok {
		t.Fatal("an expired recording was kept")
	}
}

// TestOpenBucket: every scheme the connector documents opens (an s3:// bucket is not contacted
// until a recording is stored), and recording URLs are the bucket URL without its query.
func TestOpenBucket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct{ url, base string }{
		{"mem://", "mem:/"},
		{"s3://recordings?region=cn-hangzhou&endpoint=http://127.0.0.1:9&use_path_style=true", "s3://recordings"},
		{"file://" + t.TempDir() + "/rec", ""},
	} {
		b, base, err := blobstore.Open(ctx, tc.url)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		_ = b.Close()
		if tc.base != "" && base != tc.base {
			t.Errorf("%s: base %q, want %q", tc.url, base, tc.base)
		}
	}
}

// TestSegmentEventID: a result's event id derives from the call, the leg, the segment and
// final-or-partial-number only, so a republished result dedupes and distinct ones do not.
func TestSegmentEventID(t *testing.T) {
	t.Parallel()
	const id = "0b8f6c1e-5d2a-4c1b-9a57-3f2e1d0c9b8a"
	if got := segmentEventID(id, media.LegCaller, 3, true, 2); got != "voice:"+id+":caller:seg3:final" {
		t.Errorf("final: %s", got)
	}
	seen := map[string]bool{}
	for _, c := range []struct {
		seg, n int
		final  bool
	}{{0, 0, false}, {0, 1, false}, {0, 0, true}, {1, 0, false}, {1, 0, true}} {
		e := segmentEventID(id, media.LegCaller, c.seg, c.final, c.n)
		if seen[e] || e != segmentEventID(id, media.LegCaller, c.seg, c.final, c.n) {
			t.Errorf("%+v: %s not unique or not deterministic", c, e)
		}
		seen[e] = true
	}
}
