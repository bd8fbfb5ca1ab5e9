package wechatpay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/wire/wechatpay"
)

// Vectors of vendors/vectors.md §10 (wechatpay-apiv3/wechatpay-go tests).
const (
	platformCert = `-----BEGIN CERTIFICATE-----
MIIDVzCCAj+gAwIBAgIJANfOWdH1ItcBMA0GCSqGSIb3DQEBCwUAMEIxCzAJBgNV
BAYTAlhYMRUwEwYDVQQHDAxEZWZhdWx0IENpdHkxHDAaBgNVBAoME0RlZmF1bHQg
Q29tcGFueSBMdGQwHhcNMjEwNDI3MDg1NTIzWhcNMzEwNDI1MDg1NTIzWjBCMQsw
CQYDVQQGEwJYWDEVMBMGA1UEBwwMRGVmYXVsdCBDaXR5MRwwGgYDVQQKDBNEZWZh
dWx0IENvbXBhbnkgTHRkMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA
2VCTd91fnUn73Xy9DLvt/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXag
HQ4vGeZN0yqm++rDsGK+U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOm
DeJf2vg6byms9RUipiq4SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B83
4uxl1zNLYQCrkdBzb8oUxwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGf
y8wus7hwKz6clt3Whmmda7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtk
aSef4FdEEgEXJiw0VAJT8wIDAQABo1AwTjAdBgNVHQ4EFgQUT1c7nd/SUO76HSoZ
umNUJv1R5PwwHwYDVR0jBBgwFoAUT1c7nd/SUO76HSoZumNUJv1R5PwwDAYDVR0T
BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAfTjxKRQMzNB/U6ZoCUS+BSNfa2Oh
0plMN6ZuzwiVVZwg1jywvv5yv04koS7Pd4i9E4gt9ZBUQXlpq+A3oOCEEHNRR6b2
kyazGRM7s0OP5X21WrbpSmKmU6K7hkfx30yYs08LVs/Q8DIhvaj1FCFeJzUCzYn/
fHMq4tsbKO0dKAeydPM/nrUZBmaYQVKMVOORGLFjFKVO7JV6Kq/R86ouhjEPgJOe
2xulNBUcjicqtZlBdEh/PWCYP2SpGVDclKm8jeo175T3EVAkdKzzmfpxtMmnMlmq
cTJOU9TxuGvNASMtjj7pYIerTx+xgZDXEVBWFW9PjJ0TV06tCRsgSHItgg==
-----END CERTIFICATE-----`
	signerSig  = `BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLli/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg==`
	notifyBody = `{"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17","create_time":"2021-06-24T16:37:26+08:00","resource_type":"encrypt-resource","event_type":"PAYSCORE.USER_OPEN_SERVICE","summary":"签约成功","resource":{"original_type":"payscore","algorithm":"AEAD_AES_256_GCM","ciphertext":"YDS3lKPaC4Y52Gf3uhft5qUBlIa8b428AWTtTauHQfQrRw+X1WpiuHIDy0vo1Vd6VEq67aVyqPdDYMkRVSDaZL3iZttevRMOoPKMifozg6XPWjIZumks/GpT48lI4NizyeaqLBokNebthah3o1H76qSlO9NkDjp9bzmKLEYYH9TEklFUpsvPqOTOcgSLgh21YJXYR7dEBXFgRLiNIKRgO5JdXh1hccRUAlyVWxE54PXpnQ==","associated_data":"payscore","nonce":"Kj7QIyUiYx1q"}}`
	notifySig  = `tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXFlbYZTOQrVdG4b6LfTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9FjDR//rxELLwXvV1VEA1IBLX70xptjL8hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvRGrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY406ArAmQ90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q==`
	nativeBody = `{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"}}`
	nativeSig  = `yydH5XPBobXDNZjFuTMwKJyEdcBPkXEFG4KqtnDq/RFg+alqTKpLF8kGjsPLe4ZTs8XAT4BETuOvKGRp9suZH55fREX4oy+P78uyIo68vJmnYZMle6+jOre625hGu7dBR4zLu+YIzX+sixs4+fKF/xsAQi0obHpBn0dV+qmXELFAldtloL52Dj0+ZA0x3KAcMehv9Bc6DqEQOzGNqzWWa5XDwLnlDHSFfx7i+UxJRQ2lo1ZdD6/jwjLfQsbnvd5G7fOC4EvGg26QDF6sqw+Nk0Fey7v6XmBh20HnNExXb3lGtKcw3JA8YhV+ohU5yDOOFk3+6tQOHeg0kJDL9S/riQ==`
	txCipher   = `DUcegK33A8MEOgdJt8PWwAdrzVDy3c3BTENCdjZ/7K2gbkFM2sU/cZ/UPNrLir4DXaSrqBdzgGy/sMCWIPKVQdMoXpY4xG4iYhF7TH0MBs4T7FaM9hoFjn/sa9TCWtjLTRzZiknVkW9IXW37a35VmVaeZyEYg+wBm3qpNS8A5dUAMLCno0J6LHDN5GXutOi+aMmWJMtSbZltG3H2Cu2Vpv+cqnyyGHLFevoxkLhsHY8XPi0+gkQtq7BpfOJiSEHy+Tzi+aGqosa8KxEMMuGWEW91xP679gDrMCnQbv7+qi5TWa6XKIPVFYDP19uWym4bKll9rTE8sX009py/kUurM027FFg4r7XdPLOmUkog4wl6XQ2sbXBVSIDzQmmEhddYqRHuZw5iJO4ZbhxVhSdyXB5mhTFyYqtKq+2691VNgmhl93Xtu7NLvzeT3djN3JlO18MVNH18y8RIl4MLLh7OA/hI+WchS+KnBVSbxH+Wu4cCwy6NkKQ3dUzRbysTcqgkCht3k75p2lw8ZGnQcBFkEWDEZp1UEFZDqUSN/8z6NCFMLo1SiZKjA/Qw3lYM9XKKZHKgbx5zVaen658LGQ==`
	txPlain    = `{"mchid":"1230000109","appid":"wxd678efh567hg6787","out_trade_no":"1217752501201407033233368018","transaction_id":"1217752501201407033233368018","trade_type":"NATIVE","trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"CMC","attach":"","success_time":"2018-06-08T10:34:56+08:00","payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},"amount":{"total":100,"payer_total":100,"currency":"CNY","payer_currency":"CNY"}}`
)

func certKey(t testing.TB) *rsa.PublicKey {
	k, err := wechatpay.ParsePublicKey(platformCert)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignatureVectors(t *testing.T) {
	t.Parallel()
	key := certKey(t)
	at := time.Unix(1624523846, 0)
	tests := []struct {
		name, message, sig string
		want               error
	}{
		{"signer source (§10.1)", "source", signerSig, nil},
		{"native prepay request (§10.5a)", wechatpay.RequestMessage("POST", wechatpay.PathNative, "1624523846", "A1B2C3D4E5F6G7", []byte(nativeBody)), nativeSig, nil},
		{"notify (§10.3)", wechatpay.ResponseMessage("1624523846", "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz", []byte(notifyBody)), notifySig, nil},
		{"tampered body", wechatpay.ResponseMessage("1624523846", "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz", []byte(strings.Replace(notifyBody, "签约", "解约", 1))), notifySig, wechatpay.ErrSignature},
		{"signature probe", "source", "WECHATPAY/SIGNTEST/" + signerSig, wechatpay.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := wechatpay.Verify(key, tt.message, tt.sig); !errors.Is(err, tt.want) && (err != nil || tt.want != nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	// The notify through VerifyResponse: serial, window, replayed timestamp.
	keys := wechatpay.Keys{"D7CE59D1F522D701": key}
	s := wechatpay.Signed{Timestamp: "1624523846", Nonce: "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz", Serial: "D7CE59D1F522D701", Signature: notifySig}
	if err := wechatpay.VerifyResponse(keys, s, []byte(notifyBody), at.Add(time.Minute), 5*time.Minute); err != nil {
		t.Errorf("notify: %v", err)
	}
	if err := wechatpay.VerifyResponse(keys, s, []byte(notifyBody), at.Add(time.Hour), 5*time.Minute); !errors.Is(err, wechatpay.ErrExpired) {
		t.Errorf("old notify: %v", err)
	}
	s.Serial = "UNKNOWN"
	if err := wechatpay.VerifyResponse(keys, s, []byte(notifyBody), at, 5*time.Minute); !errors.Is(err, wechatpay.ErrSerial) {
		t.Errorf("unknown serial: %v", err)
	}
	a := wechatpay.Auth{MchID: "1230000109", Nonce: "A1B2C3D4E5F6G7", Timestamp: "1624523846", Serial: "F5765756002FDD77", Signature: nativeSig}
	const header = `WECHATPAY2-SHA256-RSA2048 mchid="1230000109",nonce_str="A1B2C3D4E5F6G7",timestamp="1624523846",serial_no="F5765756002FDD77",signature="` + nativeSig + `"`
	if a.String() != header {
		t.Errorf("Authorization:\n got %s\nwant %s", a.String(), header)
	}
	p, err := wechatpay.ParseAuthorization(header)
	if err != nil || p != a {
		t.Fatalf("ParseAuthorization = %+v, %v", p, err)
	}
	if err := wechatpay.VerifyRequest(key, p, "POST", wechatpay.PathNative, []byte(nativeBody), at, 5*time.Minute); err != nil {
		t.Errorf("VerifyRequest: %v", err)
	}
}

func TestRequestMessageLayout(t *testing.T) {
	t.Parallel()
	// §10.2: the message layout of wechatpay-go's credential test.
	if got := wechatpay.RequestMessage("GET", "/v3/certificates", "1624523846", "A1B2C3D4E5F6G7", nil); got != "GET\n/v3/certificates\n1624523846\nA1B2C3D4E5F6G7\n\n" {
		t.Errorf("GET: %q", got)
	}
	if got := wechatpay.RequestMessage("POST", "/v3/certificates", "1624523846", "A1B2C3D4E5F6G7", []byte("Hello World!\n")); got != "POST\n/v3/certificates\n1624523846\nA1B2C3D4E5F6G7\nHello World!\n\n" {
		t.Errorf("POST: %q", got)
	}
}

func TestDecryptVectors(t *testing.T) {
	t.Parallel()
	n, err := wechatpay.ParseNotify([]byte(notifyBody))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key, nonce, ad, ct, want string
		err                            error
	}{
		{"payscore, 16-byte key (§10.3)", "testMchAPIv3Key0", n.Resource.Nonce, n.Resource.AssociatedData, n.Resource.Ciphertext,
			`{"mchid":"1234567890","appid":"054aa7d7a2a54ab5898df65bd96f001c","create_time":"2020-06-30T12:12:00+08:00","out_contract_code":"21640bdbd08e473e828f3206a2741c6e"}`, nil},
		{"transaction, 32-byte key (§10.5b)", "0123456789abcdef0123456789abcdef", "fdasflkja484", "transaction", txCipher, txPlain, nil},
		{"wrong key", "0123456789abcdef0123456789abcdeX", "fdasflkja484", "transaction", txCipher, "", wechatpay.ErrDecrypt},
		{"wrong associated data", "0123456789abcdef0123456789abcdef", "fdasflkja484", "payscore", txCipher, "", wechatpay.ErrDecrypt},
		{"short nonce", "0123456789abcdef0123456789abcdef", "fdas", "transaction", txCipher, "", wechatpay.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := wechatpay.Decrypt(tt.key, tt.nonce, tt.ad, tt.ct)
			if !errors.Is(err, tt.err) || string(got) != tt.want {
				t.Errorf("Decrypt = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
		})
	}
	ct, err := wechatpay.Encrypt("0123456789abcdef0123456789abcdef", "fdasflkja484", "transaction", []byte(txPlain))
	if err != nil || ct != txCipher {
		t.Errorf("Encrypt does not reproduce the vector: %v", err)
	}
}

func TestSignResponseRoundTrip(t *testing.T) {
	t.Parallel()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	s, err := wechatpay.SignResponse(key, "PUB_KEY_ID_1", []byte(`{"code_url":"weixin://x"}`), now, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if err := wechatpay.VerifyResponse(wechatpay.Keys{"PUB_KEY_ID_1": &key.PublicKey}, s, []byte(`{"code_url":"weixin://x"}`), now, time.Minute); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseNotify(f *testing.F) {
	f.Add([]byte(notifyBody))
	f.Add([]byte(`{"id":"1","event_type":"TRANSACTION.SUCCESS","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"` + txCipher + `","associated_data":"transaction","nonce":"fdasflkja484"}}`))
	f.Add([]byte(`{"id":"1","event_type":"x","resource":{"algorithm":"AEAD_AES_256_GCM","ciphertext":"AAAA","nonce":"short"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		n, err := wechatpay.ParseNotify(body)
		if err != nil {
			return
		}
		if n.ID == "" || n.Resource.Ciphertext == "" || n.Resource.Algorithm != wechatpay.AlgorithmAEAD {
			t.Fatalf("accepted a notify without its required fields: %q", body)
		}
		tx, err := n.DecryptTransaction("0123456789abcdef0123456789abcdef")
		if err == nil && (tx.OutTradeNo == "" || tx.TradeState == "") {
			t.Fatalf("decrypted a transaction without out_trade_no/trade_state: %q", body)
		}
	})
}
