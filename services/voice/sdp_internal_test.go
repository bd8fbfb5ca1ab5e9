package voice

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

func readOffers(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/offers/*.sdp")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/offers: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func TestParseOffer(t *testing.T) {
	t.Parallel()
	offers := readOffers(t)
	for _, tc := range []struct {
		file   string
		ip     string
		port   int
		pt     int
		dtmf   int
		hold   bool
		answer string // direction of the answer
	}{
		{"baresip.sdp", "127.0.0.1", 10106, media.PCMU, 101, false, "a=sendrecv"},
		{"freeswitch-pcma-first.sdp", "10.0.0.5", 24618, media.PCMA, 101, false, "a=sendrecv"},
		{"asterisk-hold.sdp", "0.0.0.0", 11834, media.PCMU, 101, true, "a=recvonly"},
		{"ipv6-media-level.sdp", "::1", 5002, media.PCMA, -1, true, "a=inactive"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			o, err := parseOffer(offers[tc.file])
			if err != nil {
				t.Fatal(err)
			}
			pt, ok := o.choose([]int{media.PCMU, media.PCMA})
			if o.IP.String() != tc.ip || o.Port != tc.port || !ok || pt != tc.pt || o.DTMF != tc.dtmf || o.Hold() != tc.hold {
				t.Fatalf("offer %+v, chose %d", o, pt)
			}
			a := string(answer(netip.MustParseAddr("127.0.0.1"), 20000, pt, o, 1, 1))
			if !strings.Contains(a, tc.answer) || !strings.Contains(a, "m=audio 20000 RTP/AVP ") {
				t.Fatalf("answer:\n%s", a)
			}
		})
	}
	for name, bad := range map[string]string{
		"empty":       "",
		"not sdp":     "hello",
		"no audio":    "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n",
		"no c=":       "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
		"bad pt":      "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/AVP 300\r\n",
		"srtp only":   "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\nm=audio 5000 RTP/SAVP 0\r\n",
		"hostname c=": "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 pbx.example.com\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n",
	} {
		if _, err := parseOffer([]byte(bad)); !errors.Is(err, errSDP) {
			t.Errorf("%s: err = %v, want errSDP", name, err)
		}
	}
}

// FuzzParseOffer: parsing any body never panics; an offer it accepts has a usable address,
// port and payload types, and the connector's answer to it parses back to the codec chosen, the
// telephone-event type and the mirrored direction.
func FuzzParseOffer(f *testing.F) {
	for _, b := range readOffers(f) {
		f.Add(b)
	}
	f.Add([]byte("v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 1 RTP/AVP 0\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := parseOffer(b)
		if err != nil {
			if !errors.Is(err, errSDP) {
				t.Fatalf("error %v does not wrap errSDP", err)
			}
			return
		}
		if !o.IP.IsValid() || o.Port < 1 || o.Port > 65535 || len(o.Formats) == 0 || o.DTMF > 127 {
			t.Fatalf("accepted an unusable offer %+v", o)
		}
		for _, pt := range o.Formats {
			if pt < 0 || pt > 127 {
				t.Fatalf("payload type %d", pt)
			}
		}
		pt, ok := o.choose([]int{media.PCMU, media.PCMA})
		if !ok {
			return
		}
		a, err := parseOffer(answer(netip.MustParseAddr("127.0.0.1"), 20000, pt, o, 1, 1))
		if err != nil {
			t.Fatalf("our answer does not parse: %v", err)
		}
		if a.Port != 20000 || a.Formats[0] != pt || (o.DTMF >= 0) != (a.DTMF >= 0) {
			t.Fatalf("answer %+v to offer %+v", a, o)
		}
		want := map[string]string{"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive", "sendrecv": "sendrecv"}[o.Dir]
		if a.Dir != want {
			t.Fatalf("answer direction %s to %s", a.Dir, o.Dir)
		}
		if slices.Contains(a.Formats, 13) {
			t.Fatal("answer carries a codec it did not choose")
		}
	})
}
