package sandbox

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// SecretNames are the credentials the simulated vendors share with a connector that guard one
// of omnibus's inbound HTTP entries: webhook tokens and signing secrets, the WeCom callback's
// AES key, the web chat's visitor key, the TCCC push password, the WeChat Pay APIv3 key that
// encrypts notifies, and the payment providers' signing key pairs (the provider's private key,
// the connector's copy of its public key). Credentials holds fixed values of them for tests
// and compose; the all-in-one demo never uses those: it generates these per data dir
// (NewSecrets, kept by allinone.DemoSecrets), so that the source does not forge its entries.
var SecretNames = []string{
	"EXAMPLE_SECRET",
	"SMS_WEBHOOK_TOKEN",
	"WEBCHAT_SECRET",
	"WECHATKF_TOKEN", "WECHATKF_AES_KEY",
	"WEIBO_APP_SECRET",
	"DOUYIN_CLIENT_SECRET",
	"KUAISHOU_APP_SECRET",
	"JIRA_WEBHOOK_SECRET", "ZENDESK_WEBHOOK_SECRET",
	"VOICE_TCCC_PUSH_PASSWORD",
	"WECHATPAY_APIV3_KEY",
	"SANDBOX_ALIPAY_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY",
	"SANDBOX_WECHATPAY_PLATFORM_PRIVATE_KEY", "WECHATPAY_PLATFORM_PUBLIC_KEY",
}

// NewSecrets returns fresh random values for every one of SecretNames, each in the form its
// connector validates (hex secrets, a 43-character EncodingAESKey, a 32-character APIv3 key,
// base64 DER RSA-2048 key pairs).
func NewSecrets() (map[string]string, error) {
	hexOf := func(n int) string {
		b := make([]byte, n)
		_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
		return hex.EncodeToString(b)
	}
	s := map[string]string{}
	for _, k := range []string{"EXAMPLE_SECRET", "SMS_WEBHOOK_TOKEN", "WEBCHAT_SECRET", "WEIBO_APP_SECRET", "DOUYIN_CLIENT_SECRET",
		"KUAISHOU_APP_SECRET", "JIRA_WEBHOOK_SECRET", "ZENDESK_WEBHOOK_SECRET", "VOICE_TCCC_PUSH_PASSWORD"} {
		s[k] = hexOf(24)
	}
	s["WECHATKF_TOKEN"] = hexOf(16)      // 32 letters and digits
	s["WECHATPAY_APIV3_KEY"] = hexOf(16) // 32 ASCII characters
	aes := make([]byte, 32)
	_, _ = rand.Read(aes)
	s["WECHATKF_AES_KEY"] = base64.RawStdEncoding.EncodeToString(aes) // 43 characters
	for _, pair := range [][2]string{{"SANDBOX_ALIPAY_PRIVATE_KEY", "ALIPAY_PUBLIC_KEY"},
		{"SANDBOX_WECHATPAY_PLATFORM_PRIVATE_KEY", "WECHATPAY_PLATFORM_PUBLIC_KEY"}} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("sandbox secrets: %w", err)
		}
		priv, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("sandbox secrets: %w", err)
		}
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("sandbox secrets: %w", err)
		}
		s[pair[0]], s[pair[1]] = base64.StdEncoding.EncodeToString(priv), base64.StdEncoding.EncodeToString(pub)
	}
	return s, nil
}
