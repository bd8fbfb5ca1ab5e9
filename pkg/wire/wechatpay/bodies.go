package wechatpay

import (
	"encoding/json"
	"fmt"
)

// Amount is an order's amount in fen.
type Amount struct {
	Total    int64  `json:"total"`
	Currency string `json:"currency,omitempty"`
}

// OrderRequest is the body of a Native or H5 prepay.
type OrderRequest struct {
	AppID       string     `json:"appid"`
	MchID       string     `json:"mchid"`
	Description string     `json:"description"`
	OutTradeNo  string     `json:"out_trade_no"`
	TimeExpire  string     `json:"time_expire,omitempty"` // RFC 3339
	Attach      string     `json:"attach,omitempty"`
	NotifyURL   string     `json:"notify_url"`
	Amount      Amount     `json:"amount"`
	SceneInfo   *SceneInfo `json:"scene_info,omitempty"`
}

// SceneInfo is required by H5 orders.
type SceneInfo struct {
	PayerClientIP string  `json:"payer_client_ip"`
	H5Info        *H5Info `json:"h5_info,omitempty"`
}

// H5Info is the H5 scene.
type H5Info struct {
	Type string `json:"type"` // Wap, iOS, Android
}

// NativeResponse is the answer of a Native prepay.
type NativeResponse struct {
	CodeURL string `json:"code_url"`
}

// H5Response is the answer of an H5 prepay.
type H5Response struct {
	H5URL string `json:"h5_url"`
}

// CloseRequest is the body of a close.
type CloseRequest struct {
	MchID string `json:"mchid"`
}

// Payer is the paying user.
type Payer struct {
	OpenID string `json:"openid,omitempty"`
}

// TxAmount is a transaction's amount.
type TxAmount struct {
	Total         int64  `json:"total"`
	PayerTotal    int64  `json:"payer_total,omitempty"`
	Currency      string `json:"currency,omitempty"`
	PayerCurrency string `json:"payer_currency,omitempty"`
}

// Transaction is a query's answer and a TRANSACTION.* notify's decrypted resource.
type Transaction struct {
	MchID          string    `json:"mchid"`
	AppID          string    `json:"appid"`
	OutTradeNo     string    `json:"out_trade_no"`
	TransactionID  string    `json:"transaction_id,omitempty"`
	TradeType      string    `json:"trade_type,omitempty"`
	TradeState     string    `json:"trade_state"`
	TradeStateDesc string    `json:"trade_state_desc,omitempty"`
	BankType       string    `json:"bank_type,omitempty"`
	Attach         string    `json:"attach,omitempty"`
	SuccessTime    string    `json:"success_time,omitempty"`
	Payer          *Payer    `json:"payer,omitempty"`
	Amount         *TxAmount `json:"amount,omitempty"`
}

// Resource is a notify's encrypted resource.
type Resource struct {
	OriginalType   string `json:"original_type"`
	Algorithm      string `json:"algorithm"`
	Ciphertext     string `json:"ciphertext"`
	AssociatedData string `json:"associated_data"`
	Nonce          string `json:"nonce"`
}

// Notify is a notify's body.
type Notify struct {
	ID           string   `json:"id"`
	CreateTime   string   `json:"create_time"`
	ResourceType string   `json:"resource_type"`
	EventType    string   `json:"event_type"`
	Summary      string   `json:"summary"`
	Resource     Resource `json:"resource"`
}

// ParseNotify reads a notify body (its shape, not its signature).
func ParseNotify(body []byte) (Notify, error) {
	var n Notify
	if err := json.Unmarshal(body, &n); err != nil {
		return Notify{}, fmt.Errorf("%w: notify: %w", ErrMalformed, err)
	}
	if n.ID == "" || n.EventType == "" || n.Resource.Ciphertext == "" {
		return Notify{}, fmt.Errorf("%w: notify lacks id, event_type or resource", ErrMalformed)
	}
	if n.Resource.Algorithm != AlgorithmAEAD {
		return Notify{}, fmt.Errorf("%w: resource algorithm %q", ErrMalformed, n.Resource.Algorithm)
	}
	return n, nil
}

// DecryptTransaction decrypts a notify's resource into a Transaction.
func (n Notify) DecryptTransaction(apiV3Key string) (Transaction, error) {
	pt, err := Decrypt(apiV3Key, n.Resource.Nonce, n.Resource.AssociatedData, n.Resource.Ciphertext)
	if err != nil {
		return Transaction{}, err
	}
	var tx Transaction
	if err := json.Unmarshal(pt, &tx); err != nil {
		return Transaction{}, fmt.Errorf("%w: resource: %w", ErrMalformed, err)
	}
	if tx.OutTradeNo == "" || tx.TradeState == "" {
		return Transaction{}, fmt.Errorf("%w: resource lacks out_trade_no or trade_state", ErrMalformed)
	}
	return tx, nil
}

// Error is an API v3 error answer.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("wechatpay: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}
