package oms

import (
	"fmt"
	"regexp"
	"strings"
)

// Order statuses and the text the OMS shows for them.
var StatusText = map[string]string{
	"WAIT_PAY":  "待付款",
	"WAIT_SEND": "待发货",
	"SENT":      "已发货",
	"SIGNED":    "已签收",
	"FINISHED":  "已完成",
	"CLOSED":    "已关闭",
	"REFUNDING": "退款中",
}

// Order is one order as the OMS returns it.
type Order struct {
	OrderNo         string    `json:"order_no"`
	Platform        string    `json:"platform"` // tmall, jd, douyin, pdd, wechat_shop
	PlatformOrderNo string    `json:"platform_order_no,omitempty"`
	ShopName        string    `json:"shop_name"`
	Status          string    `json:"status"`
	StatusText      string    `json:"status_text,omitempty"`
	CreatedAt       string    `json:"created_at"` // TimeLayout, CST
	PaidAt          string    `json:"paid_at,omitempty"`
	Currency        string    `json:"currency"` // CNY
	TotalAmount     string    `json:"total_amount"`
	DiscountAmount  string    `json:"discount_amount"`
	FreightAmount   string    `json:"freight_amount"`
	PayAmount       string    `json:"pay_amount"`
	BuyerMobile     string    `json:"buyer_mobile"` // masked: 138****8000
	Receiver        Receiver  `json:"receiver"`
	Items           []Item    `json:"items"`
	Waybills        []Waybill `json:"waybills"`
	AftersaleStatus string    `json:"aftersale_status"` // NONE, REFUNDING, REFUNDED, EXCHANGING
}

// Receiver is the (masked) delivery address of an order.
type Receiver struct {
	Name     string `json:"name"`
	Mobile   string `json:"mobile"`
	Province string `json:"province"`
	City     string `json:"city"`
	District string `json:"district"`
	Address  string `json:"address"`
}

// Item is one order line.
type Item struct {
	SKUCode  string `json:"sku_code"`
	ItemName string `json:"item_name"`
	Spec     string `json:"spec,omitempty"`
	Quantity int    `json:"quantity"`
	Price    string `json:"price"`
	Amount   string `json:"amount"`
}

// Waybill is one shipment of an order.
type Waybill struct {
	LogisticsCode string `json:"logistics_code"` // SF, YTO, ZTO, JD, YUNDA, STO, EMS
	LogisticsName string `json:"logistics_name"`
	WaybillNo     string `json:"waybill_no"`
	ShippedAt     string `json:"shipped_at"`
}

// OrderPage is the data of GET /v1/orders.
type OrderPage struct {
	Total    int     `json:"total"`
	Page     int     `json:"page"`
	PageSize int     `json:"page_size"`
	Orders   []Order `json:"orders"`
}

// ServiceRecord is the body of POST /v1/aftersale/service-records.
type ServiceRecord struct {
	OrderNo    string   `json:"order_no"`
	ExternalID string   `json:"external_id"` // idempotency key: the omnibus conversation id
	Source     string   `json:"source"`      // "omnibus"
	Summary    string   `json:"summary"`
	Agent      string   `json:"agent,omitempty"`
	Outcome    string   `json:"outcome"`
	Channels   []string `json:"channels"`
	OpenedAt   string   `json:"opened_at"`
	ClosedAt   string   `json:"closed_at"`
}

// ServiceRecordResult is the data of a service-record POST.
type ServiceRecordResult struct {
	RecordID   string `json:"record_id"`
	OrderNo    string `json:"order_no"`
	ExternalID string `json:"external_id"`
	CreatedAt  string `json:"created_at"`
	Duplicate  bool   `json:"duplicate"`
}

// RecordRemark is the body of POST /v1/aftersale/service-records/remarks.
type RecordRemark struct {
	ExternalID string `json:"external_id"` // the record's external_id
	RemarkID   string `json:"remark_id"`   // idempotency key within the record (1 to 128 characters)
	Kind       string `json:"kind"`        // what the remark is: "summary"
	Content    string `json:"content"`     // at most 2000 characters
	Source     string `json:"source"`      // "omnibus"
}

// RecordRemarkResult is the data of a remark POST.
type RecordRemarkResult struct {
	RecordID  string `json:"record_id"`
	RemarkID  string `json:"remark_id"`
	CreatedAt string `json:"created_at"`
	Duplicate bool   `json:"duplicate"`
}

// Check validates a remark result.
func (r *RecordRemarkResult) Check() error {
	if r.RecordID == "" || r.RemarkID == "" {
		return fmt.Errorf("remark result without record_id or remark_id")
	}
	return nil
}

var (
	amountRE  = regexp.MustCompile(`^-?[0-9]{1,12}\.[0-9]{2}$`)
	orderNoRE = regexp.MustCompile(`^[0-9A-Za-z_-]{6,64}$`)
)

// ValidOrderNo reports whether s has the shape of an order number (6 to 64 [0-9A-Za-z_-]).
func ValidOrderNo(s string) bool { return orderNoRE.MatchString(s) }

// Check validates an order's shape: order number, amounts with two decimals, parseable times,
// positive quantities and waybills with a number.
func (o *Order) Check() error {
	if !ValidOrderNo(o.OrderNo) {
		return fmt.Errorf("order_no %q", o.OrderNo)
	}
	if _, ok := StatusText[o.Status]; !ok {
		return fmt.Errorf("order %s: unknown status %q", o.OrderNo, o.Status)
	}
	for name, a := range map[string]string{"total_amount": o.TotalAmount, "discount_amount": o.DiscountAmount,
		"freight_amount": o.FreightAmount, "pay_amount": o.PayAmount} {
		if !amountRE.MatchString(a) {
			return fmt.Errorf("order %s: %s %q is not yuan with two decimals", o.OrderNo, name, a)
		}
	}
	if _, err := ParseTime(o.CreatedAt); err != nil {
		return fmt.Errorf("order %s: created_at: %w", o.OrderNo, err)
	}
	if o.PaidAt != "" {
		if _, err := ParseTime(o.PaidAt); err != nil {
			return fmt.Errorf("order %s: paid_at: %w", o.OrderNo, err)
		}
	}
	for i, it := range o.Items {
		if it.Quantity <= 0 || !amountRE.MatchString(it.Price) || !amountRE.MatchString(it.Amount) || strings.TrimSpace(it.ItemName) == "" {
			return fmt.Errorf("order %s: item %d malformed", o.OrderNo, i)
		}
	}
	for i, w := range o.Waybills {
		if strings.TrimSpace(w.WaybillNo) == "" || strings.TrimSpace(w.LogisticsCode) == "" {
			return fmt.Errorf("order %s: waybill %d without number or company", o.OrderNo, i)
		}
	}
	return nil
}

// Check validates a page of orders.
func (p *OrderPage) Check() error {
	if p.Orders == nil || p.Total < len(p.Orders) {
		return fmt.Errorf("orders page: total %d with %d orders", p.Total, len(p.Orders))
	}
	for i := range p.Orders {
		if err := p.Orders[i].Check(); err != nil {
			return err
		}
	}
	return nil
}

// Check validates a service-record result.
func (r *ServiceRecordResult) Check() error {
	if r.RecordID == "" || r.ExternalID == "" {
		return fmt.Errorf("service record result without record_id or external_id")
	}
	return nil
}

// NationalMobile returns the 11-digit national form of a Chinese E.164 mobile (+8613800138000 →
// 13800138000), the form OMSs store; other numbers come back unchanged.
func NationalMobile(e164 string) string {
	if strings.HasPrefix(e164, "+861") && len(e164) == 14 {
		return e164[3:]
	}
	return e164
}

// MaskMobile masks a phone the way the OMS does: 3 first and 4 last digits kept (138****8000).
func MaskMobile(s string) string {
	s = NationalMobile(s)
	if len(s) < 8 {
		return strings.Repeat("*", len(s))
	}
	return s[:3] + strings.Repeat("*", len(s)-7) + s[len(s)-4:]
}
