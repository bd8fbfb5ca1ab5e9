package wecom_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/wire/wecom"
)

// Official WeCom sample (shared/vendors/vectors.md §1.1 and §1.2).
const (
	vToken  = "QDG6eK"
	vAESKey = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	vCorpID = "wx5823bf96d3bd56c7"

	// §1.1 URL verification (GET).
	vGetQuery     = "msg_signature=5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3&timestamp=1409659589&nonce=263014780&echostr=P9nAzCzyDtyTWESHep1vC5X9xho%2FqYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp%2B4RPcs8TgAE7OaBO%2BFZXvnaqQ%3D%3D"
	vEchoStr      = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
	vGetSignature = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	vGetTimestamp = "1409659589"
	vGetNonce     = "263014780"
	vEchoPlain    = "1616140317555161061"
	vEchoRandom   = "c41b64491c2468d0"

	// §1.2 encrypted message callback (POST).
	vPostSignature = "477715d11cdb4164915debcba66cb864d751f3e6"
	vPostTimestamp = "1409659813"
	vPostNonce     = "1372623149"
	vPostEncrypt   = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
	vPostBody      = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><Encrypt><![CDATA[" + vPostEncrypt + "]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
	vPostSortStr   = "13726231491409659813QDG6eK" + vPostEncrypt
	vPostPlain     = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>\n<FromUserName><![CDATA[mycreate]]></FromUserName>\n<CreateTime>1409659813</CreateTime>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[hello]]></Content>\n<MsgId>4561255354251345929</MsgId>\n<AgentID>218</AgentID>\n</xml>"
	vPostRandom    = "0960688932c47ef1"
	vAESKeyHex     = "8d69989bbaabe67328014c194631ad0719b3dca035b64023df292447aab60760"
)

func official(t testing.TB) *wecom.Crypto {
	t.Helper()
	c, err := wecom.NewCrypto(vToken, vAESKey, vCorpID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestOfficialAESKey(t *testing.T) {
	t.Parallel()
	key, err := wecom.DecodeAESKey(vAESKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(key); got != vAESKeyHex {
		t.Fatalf("AESKey = %s, want %s", got, vAESKeyHex)
	}
}

// §1.1: the GET parameters arrive URL-encoded; decoded, they verify and decrypt to the echo.
func TestOfficialURLVerification(t *testing.T) {
	t.Parallel()
	c := official(t)
	q, err := url.ParseQuery(vGetQuery)
	if err != nil {
		t.Fatal(err)
	}
	if q.Get("echostr") != vEchoStr {
		t.Fatalf("decoded echostr = %s", q.Get("echostr"))
	}
	if got := wecom.Signature(vToken, q.Get("timestamp"), q.Get("nonce"), q.Get("echostr")); got != vGetSignature {
		t.Fatalf("msg_signature = %s, want %s", got, vGetSignature)
	}
	msg, rid, err := c.Decrypt(vEchoStr)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != vEchoPlain || rid != vCorpID {
		t.Fatalf("decrypted %q for %q, want %q for %q", msg, rid, vEchoPlain, vCorpID)
	}
	msg, err = c.Open(q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), q.Get("echostr"))
	if err != nil || string(msg) != vEchoPlain {
		t.Fatalf("Open = %q, %v", msg, err)
	}
	// Derived facts: 64-byte ciphertext, pad 7, msg_len 19, and the re-encryption is byte-exact.
	raw, _ := base64.StdEncoding.DecodeString(vEchoStr)
	if len(raw) != 64 {
		t.Fatalf("ciphertext %d bytes, want 64", len(raw))
	}
	enc, err := c.EncryptWithRandom([]byte(vEchoRandom), []byte(vEchoPlain))
	if err != nil {
		t.Fatal(err)
	}
	if enc != vEchoStr {
		t.Fatalf("re-encrypted echostr\n got %s\nwant %s", enc, vEchoStr)
	}
}

// §1.2: signature (with the documented sort_str), decryption to the exact XML, re-encryption.
func TestOfficialMessageCallback(t *testing.T) {
	t.Parallel()
	c := official(t)
	env, err := wecom.ParseEnvelope([]byte(vPostBody))
	if err != nil {
		t.Fatal(err)
	}
	if env.Encrypt != vPostEncrypt || env.ToUserName != vCorpID || env.AgentID != "218" {
		t.Fatalf("envelope = %+v", env)
	}
	parts := []string{vToken, vPostTimestamp, vPostNonce, env.Encrypt}
	sort.Strings(parts)
	if got := strings.Join(parts, ""); got != vPostSortStr {
		t.Fatalf("sort_str differs:\n got %s\nwant %s", got, vPostSortStr)
	}
	if got := c.Sign(vPostTimestamp, vPostNonce, env.Encrypt); got != vPostSignature {
		t.Fatalf("msg_signature = %s, want %s", got, vPostSignature)
	}
	msg, err := c.Open(vPostSignature, vPostTimestamp, vPostNonce, env.Encrypt)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg) != vPostPlain {
		t.Fatalf("plaintext differs:\n got %q\nwant %q", msg, vPostPlain)
	}
	if len(msg) != 284 {
		t.Fatalf("msg_len = %d, want 284", len(msg))
	}
	raw, _ := base64.StdEncoding.DecodeString(vPostEncrypt)
	if len(raw) != 352 {
		t.Fatalf("ciphertext %d bytes, want 352", len(raw))
	}
	// pad = 352 - (16 + 4 + 284 + 18) = 30 > 16: the PKCS#7 block is 32 bytes.
	if pad := len(raw) - (16 + 4 + len(msg) + len(vCorpID)); pad != 30 {
		t.Fatalf("pad = %d, want 30", pad)
	}
	enc, err := c.EncryptWithRandom([]byte(vPostRandom), msg)
	if err != nil {
		t.Fatal(err)
	}
	if enc != vPostEncrypt {
		t.Fatalf("re-encrypted Encrypt differs:\n got %s\nwant %s", enc, vPostEncrypt)
	}
	cb, err := wecom.ParseCallback(msg)
	if err != nil {
		t.Fatal(err)
	}
	if cb.MsgType != "text" || cb.Content != "hello" || cb.FromUserName != "mycreate" || cb.CreateTime != 1409659813 ||
		cb.MsgID != "4561255354251345929" || cb.AgentID != "218" || cb.IsKfNotice() {
		t.Fatalf("callback = %+v", cb)
	}
	// The signature does not cover ToUserName: the mirror's "ax5823..." typo verifies the same.
	typo := strings.Replace(vPostBody, "<ToUserName><![CDATA[wx5823", "<ToUserName><![CDATA[ax5823", 1)
	env2, err := wecom.ParseEnvelope([]byte(typo))
	if err != nil || !c.Verify(vPostSignature, vPostTimestamp, vPostNonce, env2.Encrypt) {
		t.Fatalf("typo'd ToUserName changed verification: %v", err)
	}
}

// wechatpy tests/test_crypto.py (work.crypto): Token 123456, corp wx49f0ab532d5d035a.
const (
	wpToken  = "123456"
	wpAESKey = "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR"
	wpCorpID = "wx49f0ab532d5d035a"
)

func wechatpy(t testing.TB) *wecom.Crypto {
	t.Helper()
	c, err := wecom.NewCrypto(wpToken, wpAESKey, wpCorpID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestWechatpyCheckSignature(t *testing.T) {
	t.Parallel()
	c := wechatpy(t)
	echo := "4ByGGj+sVCYcvGeQYhaKIk1o0pQRNbRjxybjTGblXrBaXlTXeOo1+bXFXDQQb1o6co6Yh9Bv41n7hOchLF6p+Q=="
	if _, err := c.Open("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374425", echo); err != nil {
		t.Fatalf("check_signature_should_ok: %v", err)
	}
	if _, err := c.Open("dd6b9c95b495b3f7e2901bfbc76c664930ffdb96", "1411443780", "437374424", echo); !errors.Is(err, wecom.ErrSignature) {
		t.Fatalf("check_signature_should_fail: %v", err)
	}
}

func TestWechatpyEncryptMessage(t *testing.T) {
	t.Parallel()
	c := wechatpy(t)
	reply := "<xml>\n<MsgType><![CDATA[text]]></MsgType>\n<Content><![CDATA[test]]></Content>\n<FromUserName><![CDATA[wx49f0ab532d5d035a]]></FromUserName>\n<ToUserName><![CDATA[messense]]></ToUserName>\n<AgentID>1</AgentID>\n<CreateTime>1411525903</CreateTime>\n</xml>"
	want := "9s4gMv99m88kKTh/H8IdkOiMg6bisoy3ypwy9H4hvSPe9nsGaqyw5hhSjdYbcrKk+j3nba4HMOTzHrluLBYqxgNcBqGsL8GqxlhZgURnAtObvesEl5nZ+uBE8bviY0LWke8Zy9V/QYKxNV2FqllNXcfmstttyIkMKCCmVbCFM2JTF5wY0nFhHZSjPUL2Q1qvSUCUld+/WIXrx0oyKQmpB6o8NRrrNrsDf03oxI1p9FxUgMnwKKZeOA/uu+2IEvEBtb7muXsVbwbgX05UPPJvFurDXafG0RQyPR+mf1nDnAtQmmNOuiR5MIkdQ39xn1vWwi1O5oazPoQJz0nTYjxxEE8kv3kFxtAGVRe3ypD3WeK2XeFYFMNMpatF9XiKzHo3"
	enc, err := c.EncryptWithRandom([]byte("1234567890123456"), []byte(reply))
	if err != nil {
		t.Fatal(err)
	}
	if enc != want {
		t.Fatalf("Encrypt differs:\n got %s\nwant %s", enc, want)
	}
	if sig := c.Sign("1411525903", "461056294", enc); sig != "407518b7649e86ef23978113f92d27afa9296533" {
		t.Fatalf("MsgSignature = %s", sig)
	}
}

func TestWechatpyDecryptMessage(t *testing.T) {
	t.Parallel()
	c := wechatpy(t)
	body := "<xml><ToUserName><![CDATA[wx49f0ab532d5d035a]]></ToUserName>\n<Encrypt><![CDATA[RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=]]></Encrypt>\n<AgentID><![CDATA[1]]></AgentID>\n</xml>"
	env, err := wecom.ParseEnvelope([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.Open("74d92dfeb87ba7c714f89d98870ae5eb62dff26d", "1411525903", "461056294", env.Encrypt)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := wecom.ParseCallback(msg)
	if err != nil {
		t.Fatal(err)
	}
	if cb.Content != "test" || cb.FromUserName != "messense" {
		t.Fatalf("callback = %+v", cb)
	}
}

func TestRoundTripAndRejections(t *testing.T) {
	t.Parallel()
	c := official(t)
	msg := []byte("<xml><Content><![CDATA[你好，客服 🙂]]></Content></xml>") // msg_len counts bytes
	for n := range 70 {                                                // every pad value 1..32 occurs
		m := append(bytes.Repeat([]byte("x"), n), msg...)
		enc, sig, err := c.Seal(m, "1700000000", "nonce")
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Open(sig, "1700000000", "nonce", enc)
		if err != nil || !bytes.Equal(got, m) {
			t.Fatalf("round trip of %d bytes: %q, %v", len(m), got, err)
		}
	}
	enc, sig, _ := c.Seal(msg, "1700000000", "nonce")
	other, _ := wecom.NewCrypto(vToken, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", vCorpID)
	otherCorp, _ := wecom.NewCrypto(vToken, vAESKey, "ww0000000000000000")
	wrongKey, _ := other.Encrypt(msg)
	raw, _ := base64.StdEncoding.DecodeString(enc)
	for name, tc := range map[string]struct {
		c        *wecom.Crypto
		sig, enc string
		want     error
	}{
		"wrong signature":  {c, strings.Repeat("0", 40), enc, wecom.ErrSignature},
		"upper-case ok":    {c, strings.ToUpper(sig), enc, nil},
		"truncated":        {c, c.Sign("1700000000", "nonce", enc[:len(enc)-8]), enc[:len(enc)-8], wecom.ErrDecrypt},
		"one block short":  {c, "", base64.StdEncoding.EncodeToString(raw[:len(raw)-16]), wecom.ErrDecrypt},
		"not base64":       {c, c.Sign("1700000000", "nonce", "%%%"), "%%%", wecom.ErrDecrypt},
		"empty":            {c, c.Sign("1700000000", "nonce", ""), "", wecom.ErrDecrypt},
		"wrong key":        {c, c.Sign("1700000000", "nonce", wrongKey), wrongKey, wecom.ErrDecrypt},
		"wrong receive id": {otherCorp, sig, enc, wecom.ErrReceiveID},
	} {
		if tc.sig == "" {
			tc.sig = c.Sign("1700000000", "nonce", tc.enc)
		}
		_, err := tc.c.Open(tc.sig, "1700000000", "nonce", tc.enc)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: Open = %v, want %v", name, err, tc.want)
		}
	}
}

func TestGenerateEncodingAESKey(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 50 {
		k, err := wecom.GenerateEncodingAESKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(k) != 43 || seen[k] {
			t.Fatalf("key %q", k)
		}
		seen[k] = true
		c, err := wecom.NewCrypto("t", k, "ww1")
		if err != nil {
			t.Fatal(err)
		}
		enc, _ := c.Encrypt([]byte("x"))
		if msg, err := c.Open(c.Sign("1", "2", enc), "1", "2", enc); err != nil || string(msg) != "x" {
			t.Fatalf("round trip with %s: %v", k, err)
		}
	}
}

func TestNewCryptoValidatesKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "short", vAESKey + "x", strings.Repeat("!", 43)} {
		if _, err := wecom.NewCrypto(vToken, key, vCorpID); !errors.Is(err, wecom.ErrKey) {
			t.Errorf("NewCrypto(key %q) = %v, want ErrKey", key, err)
		}
	}
	if _, err := wecom.NewCrypto("", vAESKey, vCorpID); !errors.Is(err, wecom.ErrKey) {
		t.Errorf("empty token accepted: %v", err)
	}
}

// FuzzDecrypt: Decrypt never panics; whatever it accepts re-encrypts (with a fixed prefix) to a
// ciphertext that decrypts to the same message and receive id.
func FuzzDecrypt(f *testing.F) {
	c := official(f)
	f.Add(vEchoStr)
	f.Add(vPostEncrypt)
	f.Add(vPostEncrypt[:100])
	f.Add("")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==")
	f.Fuzz(func(t *testing.T, enc string) {
		msg, rid, err := c.Decrypt(enc)
		if err != nil {
			if !errors.Is(err, wecom.ErrDecrypt) {
				t.Fatalf("error %v does not wrap ErrDecrypt", err)
			}
			return
		}
		other, err := wecom.NewCrypto(vToken, vAESKey, rid)
		if err != nil {
			t.Fatal(err)
		}
		again, err := other.EncryptWithRandom([]byte(vPostRandom), msg)
		if err != nil {
			t.Fatal(err)
		}
		msg2, rid2, err := c.Decrypt(again)
		if err != nil || !bytes.Equal(msg, msg2) || rid != rid2 {
			t.Fatalf("re-encryption round trip: %q %q %v", msg2, rid2, err)
		}
	})
}

func BenchmarkOpenKfNotice(b *testing.B) {
	c := official(b)
	notice := wecom.MarshalKfNotice(vCorpID, 1700000000, "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR", "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q")
	enc, sig, err := c.Seal(notice, "1700000000", "1372623149")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Open(sig, "1700000000", "1372623149", enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealKfNotice(b *testing.B) {
	c := official(b)
	notice := wecom.MarshalKfNotice(vCorpID, 1700000000, "ENCApHxnGDNAVNY4AaSJKj4Tb5mwsEMzxhFmHVGcra996NR", "wkAJ2GCAAASSm4_FhToWMFea0xAFfd3Q")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.Seal(notice, "1700000000", "1372623149"); err != nil {
			b.Fatal(err)
		}
	}
}
