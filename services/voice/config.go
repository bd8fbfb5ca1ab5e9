package voice

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/omnibus-dev/omnibus/services/voice/internal/media"
)

// Config is read from the environment. Every field states its default.
type Config struct {
	Listen    string `env:"VOICE_SIP_LISTEN" enable:"true" default:"127.0.0.1:5060" desc:"host:port the SIP user agent server listens on (the trunk sends INVITEs here)"`
	Transport string `env:"VOICE_SIP_TRANSPORT" default:"udp" desc:"SIP transport: udp or tcp"`
	MediaIP   string `env:"VOICE_MEDIA_IP" enable:"true" desc:"IP the trunk reaches this connector at: advertised in the SDP answer (RTP) and the Contact header (the sockets bind to the host of VOICE_SIP_LISTEN); default that host, required when it is 0.0.0.0"`
	RTPPorts  string `env:"VOICE_RTP_PORTS" default:"20000-20999" desc:"RTP port range min-max; one even port per call"`

	Trunk          string   `env:"VOICE_TRUNK" default:"trunk" desc:"name of the trunk, the trunk field of the call events"`
	Allow          []string `env:"VOICE_ALLOW" default:"127.0.0.1/32,::1/128" desc:"addresses (CIDR or IP) the trunk may send SIP from; INVITEs from anywhere else get 403"`
	DigestUser     string   `env:"VOICE_DIGEST_USER" desc:"when set, REGISTER and INVITE must carry digest credentials of this user (RFC 3261 §22, MD5, qop=auth)"`
	DigestPassword string   `env:"VOICE_DIGEST_PASSWORD" desc:"the digest password of VOICE_DIGEST_USER"`
	Realm          string   `env:"VOICE_REALM" default:"omnibus" desc:"digest realm"`

	Codecs        []string      `env:"VOICE_CODECS" default:"PCMU,PCMA" desc:"audio codecs answered, of PCMU and PCMA (G.711 µ-law, A-law)"`
	Ring          time.Duration `env:"VOICE_RING" default:"0s" desc:"how long a call rings (180 Ringing) before it is answered"`
	MediaTimeout  time.Duration `env:"VOICE_MEDIA_TIMEOUT" default:"30s" desc:"an answered call that is not on hold and receives no RTP this long is hung up; 0 = never"`
	CountryCode   string        `env:"VOICE_COUNTRY_CODE" default:"86" desc:"country calling code of national numbers (0-prefixed, or 11-digit mobiles for 86) when a caller id has no +"`
	ShutdownGrace time.Duration `env:"VOICE_SHUTDOWN_GRACE" default:"5s" desc:"on stop, calls are hung up (BYE) and their recordings stored within this time"`

	TransferDomain  string        `env:"VOICE_TRANSFER_DOMAIN" desc:"host[:port] of the PBX that reaches agent extensions: a transfer to extension 8012 sends REFER with Refer-To sip:8012@<this>; default the host:port of the Contact of the call's INVITE (the trunk itself). A transfer target given as a sip: URI is used as is"`
	TransferTimeout time.Duration `env:"VOICE_TRANSFER_TIMEOUT" default:"30s" desc:"how long a transfer may take from the REFER to the NOTIFY with the new leg's final status; after it the transfer is reported failed (timeout) and the call stays"`

	SpoolDir  string        `env:"VOICE_SPOOL_DIR" default:".omnibus/voice/spool" desc:"local directory where the legs of calls in progress are written, sample by sample; recordings left there by a crash are finalised and stored at the next start"`
	Bucket    string        `env:"VOICE_RECORDING_BUCKET" default:"file://.omnibus/voice/recordings" desc:"gocloud.dev/blob URL of the recordings bucket: file:///dir (a relative file://dir is taken from the working directory), s3://bucket?region=...&endpoint=... (AWS S3, or an S3-compatible store such as Aliyun OSS or MinIO; credentials from the AWS_* environment) or mem:// (tests)"`
	Retention time.Duration `env:"VOICE_RECORDING_RETENTION" default:"2160h" desc:"recordings older than this are deleted from the bucket (checked hourly); 0 = keep forever"`

	ASR         string        `env:"VOICE_ASR" default:"none" desc:"live transcription of the caller leg: iflytek (RTASR), aliyun (NLS SpeechTranscriber) or none; the other vendor, when its credentials are set, takes over when this one is down (VOICE_ASR_FAILOVER)"`
	ASRFailover bool          `env:"VOICE_ASR_FAILOVER" default:"true" desc:"fail over to the other ASR vendor (when its credentials are set) when the chosen one refuses the handshake, its breaker is open or its stream breaks mid-call; the audio since the last final result is resent"`
	ASRQueue    int           `env:"VOICE_ASR_QUEUE" default:"500" desc:"20 ms frames a leg may queue for its ASR vendor before frames are dropped (and the transcript marked partial); the recording never waits for ASR"`
	ASRFinish   time.Duration `env:"VOICE_ASR_FINISH_TIMEOUT" default:"5s" desc:"after a hang-up, how long the ASR vendor may take to deliver its last results before the ended event is published"`
	Tone        bool          `env:"VOICE_TONE" default:"true" desc:"measure the caller's voice tone (energy, pitch, speaking rate against their first seconds of speech) and put it on each final transcript segment, for the sentiment connector; off the RTP path, needs VOICE_ASR"`

	IFlytekURL    string `env:"VOICE_IFLYTEK_URL" default:"wss://rtasr.xfyun.cn/v1/ws" desc:"iFlytek RTASR (实时语音转写) WebSocket endpoint"`
	IFlytekAppID  string `env:"VOICE_IFLYTEK_APP_ID" desc:"iFlytek appid of the RTASR app"`
	IFlytekAPIKey string `env:"VOICE_IFLYTEK_API_KEY" desc:"iFlytek RTASR APIKey (signs the handshake, signa)"`
	IFlytekLang   string `env:"VOICE_IFLYTEK_LANG" default:"cn" desc:"RTASR lang: cn (Chinese and Chinese-English mixed), en, or the value the console shows for a dialect (方言) enabled on the app"`
	IFlytekPD     string `env:"VOICE_IFLYTEK_PD" desc:"RTASR vertical domain (pd), e.g. finance or ecom; empty for none"`

	AliyunTokenURL     string `env:"VOICE_ALIYUN_TOKEN_URL" default:"https://nls-meta.cn-shanghai.aliyuncs.com/" desc:"Aliyun NLS CreateToken endpoint"`
	AliyunURL          string `env:"VOICE_ALIYUN_NLS_URL" default:"wss://nls-gateway-cn-shanghai.aliyuncs.com/ws/v1" desc:"Aliyun NLS gateway WebSocket (SpeechTranscriber)"`
	AliyunAccessKeyID  string `env:"VOICE_ALIYUN_ACCESS_KEY_ID" desc:"Aliyun AccessKeyId allowed to call CreateToken"`
	AliyunAccessSecret string `env:"VOICE_ALIYUN_ACCESS_KEY_SECRET" desc:"its AccessKeySecret"`
	AliyunAppKey       string `env:"VOICE_ALIYUN_APPKEY" desc:"appkey of the NLS project (it fixes the language model)"`
	AliyunTTSURL       string `env:"VOICE_ALIYUN_TTS_URL" default:"https://nls-gateway-cn-shanghai.aliyuncs.com/stream/v1/tts" desc:"Aliyun NLS speech synthesis (TTS RESTful) endpoint: the prompts a call-prompt command plays into calls (needs the VOICE_ALIYUN_* credentials)"`
	TTSVoice           string `env:"VOICE_TTS_VOICE" default:"xiaoyun" desc:"NLS TTS voice of prompts a command does not choose one for"`

	// TCCC is the cloud contact centre provider (tccc_config.go).
	TCCC TCCCConfig `envprefix:"VOICE_TCCC_"`

	mediaIP, bindIP netip.Addr
	rtpMin, rtpMax  int
	allow           []netip.Prefix
	codecs          []int
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	host, _, err := splitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("VOICE_SIP_LISTEN %q: %w", c.Listen, err)
	}
	c.bindIP = netip.MustParseAddr(host)
	if c.Transport != "udp" && c.Transport != "tcp" {
		return fmt.Errorf("VOICE_SIP_TRANSPORT must be udp or tcp, got %q", c.Transport)
	}
	mip := c.MediaIP
	if mip == "" {
		mip = host
	}
	if c.mediaIP, err = netip.ParseAddr(mip); err != nil || c.mediaIP.IsUnspecified() {
		return fmt.Errorf("VOICE_MEDIA_IP %q must be the IP the trunk can reach (set it when VOICE_SIP_LISTEN binds all addresses)", mip)
	}
	lo, hi, ok := strings.Cut(c.RTPPorts, "-")
	c.rtpMin, err = strconv.Atoi(strings.TrimSpace(lo))
	if err == nil {
		c.rtpMax, err = strconv.Atoi(strings.TrimSpace(hi))
	}
	if !ok || err != nil || c.rtpMin < 1024 || c.rtpMax > 65534 || c.rtpMax < c.rtpMin+1 {
		return fmt.Errorf("VOICE_RTP_PORTS must be min-max within 1024-65534, e.g. 20000-20999, got %q", c.RTPPorts)
	}
	c.allow = nil
	for _, a := range c.Allow {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		p, err := netip.ParsePrefix(a)
		if err != nil {
			ip, ierr := netip.ParseAddr(a)
			if ierr != nil {
				return fmt.Errorf("VOICE_ALLOW: %q is neither a CIDR nor an IP", a)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		c.allow = append(c.allow, p.Masked())
	}
	if len(c.allow) == 0 {
		return fmt.Errorf("VOICE_ALLOW is empty: no trunk could call; list the trunk's addresses")
	}
	if (c.DigestUser == "") != (c.DigestPassword == "") {
		return fmt.Errorf("VOICE_DIGEST_USER and VOICE_DIGEST_PASSWORD go together")
	}
	c.codecs = nil
	for _, name := range c.Codecs {
		switch strings.ToUpper(strings.TrimSpace(name)) {
		case "PCMU":
			c.codecs = append(c.codecs, media.PCMU)
		case "PCMA":
			c.codecs = append(c.codecs, media.PCMA)
		default:
			return fmt.Errorf("VOICE_CODECS: %q is not PCMU or PCMA", name)
		}
	}
	if len(c.codecs) == 0 {
		return fmt.Errorf("VOICE_CODECS is empty")
	}
	if c.TransferDomain != "" {
		var u sip.Uri
		if err := sip.ParseUri("sip:8000@"+c.TransferDomain, &u); err != nil || u.Host == "" || strings.ContainsAny(c.TransferDomain, "@;?<> ") {
			return fmt.Errorf("VOICE_TRANSFER_DOMAIN must be the PBX's host[:port], e.g. pbx.example.com or 10.0.0.5:5060, got %q", c.TransferDomain)
		}
	}
	if c.TransferTimeout < time.Second {
		return fmt.Errorf("VOICE_TRANSFER_TIMEOUT must be at least 1s (the trunk needs time to ring the extension), got %s", c.TransferTimeout)
	}
	if c.Ring < 0 || c.Ring > 5*time.Minute {
		return fmt.Errorf("VOICE_RING must be between 0 and 5m, got %s", c.Ring)
	}
	if c.MediaTimeout < 0 {
		return fmt.Errorf("VOICE_MEDIA_TIMEOUT must be >= 0, got %s", c.MediaTimeout)
	}
	if c.Retention != 0 && c.Retention < time.Hour {
		return fmt.Errorf("VOICE_RECORDING_RETENTION must be 0 (keep) or at least 1h, got %s", c.Retention)
	}
	if c.SpoolDir == "" || c.Bucket == "" {
		return fmt.Errorf("VOICE_SPOOL_DIR and VOICE_RECORDING_BUCKET are required")
	}
	if c.CountryCode == "" || len(c.CountryCode) > 3 || strings.Trim(c.CountryCode, "0123456789") != "" || c.CountryCode[0] == '0' {
		return fmt.Errorf("VOICE_COUNTRY_CODE must be 1-3 digits, got %q", c.CountryCode)
	}
	if err := c.TCCC.validate(c.hasAliyun()); err != nil {
		return err
	}
	return c.validateASR()
}

// ASR vendors.
const (
	asrNone    = "none"
	asrIFlytek = "iflytek"
	asrAliyun  = "aliyun"
)

func (c *Config) hasIFlytek() bool { return c.IFlytekAppID != "" && c.IFlytekAPIKey != "" }
func (c *Config) hasAliyun() bool {
	return c.AliyunAccessKeyID != "" && c.AliyunAccessSecret != "" && c.AliyunAppKey != ""
}

func (c *Config) validateASR() error {
	c.ASR = strings.ToLower(strings.TrimSpace(c.ASR))
	switch c.ASR {
	case asrNone, "":
		c.ASR = asrNone
		return nil
	case asrIFlytek:
		if !c.hasIFlytek() {
			return fmt.Errorf("VOICE_ASR=iflytek needs VOICE_IFLYTEK_APP_ID and VOICE_IFLYTEK_API_KEY")
		}
	case asrAliyun:
		if !c.hasAliyun() {
			return fmt.Errorf("VOICE_ASR=aliyun needs VOICE_ALIYUN_ACCESS_KEY_ID, VOICE_ALIYUN_ACCESS_KEY_SECRET and VOICE_ALIYUN_APPKEY")
		}
	default:
		hint := ""
		for _, v := range []string{asrIFlytek, asrAliyun, asrNone} {
			if strings.HasPrefix(v, c.ASR[:1]) {
				hint = fmt.Sprintf(" (did you mean %q?)", v)
			}
		}
		return fmt.Errorf("VOICE_ASR must be iflytek, aliyun or none, got %q%s", c.ASR, hint)
	}
	for _, u := range []struct{ name, v string }{{"VOICE_IFLYTEK_URL", c.IFlytekURL}, {"VOICE_ALIYUN_NLS_URL", c.AliyunURL}} {
		if !strings.HasPrefix(u.v, "ws://") && !strings.HasPrefix(u.v, "wss://") {
			return fmt.Errorf("%s must be a ws:// or wss:// URL, got %q", u.name, u.v)
		}
	}
	if !strings.HasPrefix(c.AliyunTokenURL, "http://") && !strings.HasPrefix(c.AliyunTokenURL, "https://") {
		return fmt.Errorf("VOICE_ALIYUN_TOKEN_URL must be an http(s):// URL, got %q", c.AliyunTokenURL)
	}
	if c.ASRQueue < 10 {
		return fmt.Errorf("VOICE_ASR_QUEUE must be at least 10 frames, got %d", c.ASRQueue)
	}
	if c.ASRFinish <= 0 || c.ASRFinish > time.Minute {
		return fmt.Errorf("VOICE_ASR_FINISH_TIMEOUT must be within (0, 1m], got %s", c.ASRFinish)
	}
	return nil
}

func (c *Config) allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range c.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func splitHostPort(hp string) (string, int, error) {
	ap, err := netip.ParseAddrPort(hp)
	if err != nil {
		return "", 0, err
	}
	return ap.Addr().String(), int(ap.Port()), nil
}
