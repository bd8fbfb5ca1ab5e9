package voice

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

// errSDP is wrapped by parseOffer for an offer the connector cannot answer; the INVITE is then
// refused with 488 Not Acceptable Here.
var errSDP = errors.New("unacceptable SDP offer")

// offer is what the connector needs from an SDP offer (RFC 4566, RFC 3264).
type offer struct {
	IP      netip.Addr // where the caller's RTP comes from and goes to (c=)
	Port    int        // its RTP port (m=)
	Formats []int      // payload types of the audio m= line, in the caller's order
	DTMF    int        // payload type of telephone-event/8000, -1 if not offered
	Dir     string     // sendrecv, sendonly, recvonly or inactive
}

// Hold reports whether the offer puts the call on hold (RFC 3264 §8.4: sendonly or inactive,
// or the old RFC 2543 c=0.0.0.0).
func (o offer) Hold() bool {
	return o.Dir == "sendonly" || o.Dir == "inactive" || o.IP.IsUnspecified()
}

// maxSDP bounds the size of an offer the connector parses.
const maxSDP = 16 << 10

// parseOffer reads the first audio m= line of an RTP/AVP offer.
func parseOffer(b []byte) (offer, error) {
	if len(b) == 0 {
		return offer{}, fmt.Errorf("%w: no SDP body (offerless INVITE is not supported)", errSDP)
	}
	if len(b) > maxSDP {
		return offer{}, fmt.Errorf("%w: SDP of %d bytes", errSDP, len(b))
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(b); err != nil {
		return offer{}, fmt.Errorf("%w: %w", errSDP, err)
	}
	var m *sdp.MediaDescription
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media == "audio" && md.MediaName.Port.Value > 0 && slices.Contains(md.MediaName.Protos, "RTP") &&
			slices.Contains(md.MediaName.Protos, "AVP") {
			m = md
			break
		}
	}
	if m == nil {
		return offer{}, fmt.Errorf("%w: no RTP/AVP audio stream", errSDP)
	}
	o := offer{Port: m.MediaName.Port.Value, DTMF: -1, Dir: "sendrecv"}
	if o.Port > 65535 {
		return offer{}, fmt.Errorf("%w: port %d", errSDP, o.Port)
	}
	conn := sd.ConnectionInformation
	if m.ConnectionInformation != nil {
		conn = m.ConnectionInformation
	}
	if conn == nil || conn.Address == nil || conn.NetworkType != "IN" || (conn.AddressType != "IP4" && conn.AddressType != "IP6") {
		return offer{}, fmt.Errorf("%w: no IN IP4/IP6 connection address", errSDP)
	}
	ip, err := netip.ParseAddr(strings.SplitN(conn.Address.Address, "/", 2)[0])
	if err != nil {
		return offer{}, fmt.Errorf("%w: connection address %q", errSDP, conn.Address.Address)
	}
	o.IP = ip
	for _, f := range m.MediaName.Formats {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			return offer{}, fmt.Errorf("%w: payload type %q", errSDP, f)
		}
		o.Formats = append(o.Formats, pt)
	}
	if len(o.Formats) == 0 {
		return offer{}, fmt.Errorf("%w: audio stream without payload types", errSDP)
	}
	for _, a := range append(slices.Clone(sd.Attributes), m.Attributes...) {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			o.Dir = a.Key // media-level attributes come last and win
		case "rtpmap":
			pt, enc, ok := strings.Cut(a.Value, " ")
			if !ok {
				continue
			}
			n, err := strconv.Atoi(pt)
			if err == nil && strings.EqualFold(enc, "telephone-event/8000") && slices.Contains(o.Formats, n) {
				o.DTMF = n
			}
		}
	}
	return o, nil
}

// choose returns the first audio payload type of the offer that is also in allowed, in the
// caller's order of preference (RFC 3264 §6.1).
func (o offer) choose(allowed []int) (int, bool) {
	for _, pt := range o.Formats {
		if slices.Contains(allowed, pt) {
			return pt, true
		}
	}
	return 0, false
}

// codecName returns the SDP encoding name of payload type pt.
func codecName(pt int) string {
	if pt == media.PCMA {
		return "PCMA"
	}
	return "PCMU"
}

// answer returns the SDP answer: one codec, telephone-event if offered, and the direction that
// mirrors the offer's.
func answer(ip netip.Addr, port, pt int, o offer, sessID, version uint64) []byte {
	dir := map[string]string{"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}[o.Dir]
	if dir == "" {
		dir = "sendrecv"
	}
	ipv := "IP4"
	if ip.Is6() && !ip.Is4In6() {
		ipv = "IP6"
	}
	formats := strconv.Itoa(pt)
	if o.DTMF >= 0 {
		formats += " " + strconv.Itoa(o.DTMF)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=omnibus %d %d IN %s %s\r\ns=omnibus\r\nc=IN %s %s\r\nt=0 0\r\n", sessID, version, ipv, ip, ipv, ip)
	fmt.Fprintf(&b, "m=audio %d RTP/AVP %s\r\na=rtpmap:%d %s/8000\r\n", port, formats, pt, codecName(pt))
	if o.DTMF >= 0 {
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", o.DTMF, o.DTMF)
	}
	fmt.Fprintf(&b, "a=ptime:20\r\na=%s\r\n", dir)
	return []byte(b.String())
}
