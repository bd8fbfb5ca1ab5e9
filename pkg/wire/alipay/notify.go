package alipay

import (
	"crypto/rsa"
	"fmt"
	"net/url"
)

// Notify is a trade_status_sync notify, the fields the connector reads (the form has more).
type Notify struct {
	NotifyID    string
	NotifyType  string
	NotifyTime  string
	AppID       string
	TradeNo     string
	OutTradeNo  string
	TradeStatus string
	TotalAmount string
	GmtPayment  string
	BuyerID     string
}

// ParseNotify reads a notify's form body (application/x-www-form-urlencoded, values URL-decoded
// by the parser, as rsaCheckV1 requires). It checks the shape, not the signature.
func ParseNotify(body []byte) (url.Values, Notify, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, Notify{}, fmt.Errorf("%w: notify form: %w", ErrMalformed, err)
	}
	n := Notify{NotifyID: form.Get("notify_id"), NotifyType: form.Get("notify_type"), NotifyTime: form.Get("notify_time"),
		AppID: form.Get("app_id"), TradeNo: form.Get("trade_no"), OutTradeNo: form.Get("out_trade_no"),
		TradeStatus: form.Get("trade_status"), TotalAmount: form.Get("total_amount"), GmtPayment: form.Get("gmt_payment"),
		BuyerID: form.Get("buyer_id")}
	switch {
	case n.NotifyID == "" || n.AppID == "" || n.OutTradeNo == "" || n.TradeStatus == "":
		return nil, Notify{}, fmt.Errorf("%w: notify lacks notify_id, app_id, out_trade_no or trade_status", ErrMalformed)
	case form.Get("sign") == "":
		return nil, Notify{}, fmt.Errorf("%w: notify has no sign", ErrSignature)
	}
	if n.TotalAmount != "" {
		if _, err := ParseYuan(n.TotalAmount); err != nil {
			return nil, Notify{}, err
		}
	}
	return form, n, nil
}

// NotifyContent is the string a trade notify signs (rsaCheckV1): every parameter but sign and
// sign_type, empty values dropped, sorted, values URL-decoded.
func NotifyContent(form url.Values) string { return Content(form, "sign_type") }

// VerifyNotify checks a trade notify's sign with the Alipay public key (rsaCheckV1).
func VerifyNotify(key *rsa.PublicKey, form url.Values) error {
	sig := form.Get("sign")
	if sig == "" {
		return fmt.Errorf("%w: no sign", ErrSignature)
	}
	return Verify(key, NotifyContent(form), sig)
}

// SignNotify is the gateway side: it sets sign and sign_type=RSA2 on form (rsaCheckV1 rules).
func SignNotify(key *rsa.PrivateKey, form url.Values) error {
	form.Del("sign")
	sig, err := Sign(key, NotifyContent(form))
	if err != nil {
		return err
	}
	form.Set("sign_type", SignType)
	form.Set("sign", sig)
	return nil
}
