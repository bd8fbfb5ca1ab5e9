package oms

import (
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/pii"
	omswire "github.com/omnibus-dev/omnibus/pkg/wire/oms"
)

// Order is an order as omni.tool.oms.lookup.completed carries it: OMS times (CST wall clock)
// become RFC 3339 UTC; the receiver keeps no address line, and its name and phone are masked
// whether or not the OMS masked them.
type Order struct {
	OrderNo         string     `json:"order_no"`
	Platform        string     `json:"platform,omitempty"`
	PlatformOrderNo string     `json:"platform_order_no,omitempty"`
	ShopName        string     `json:"shop_name,omitempty"`
	Status          string     `json:"status"`
	StatusText      string     `json:"status_text,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	PaidAt          *time.Time `json:"paid_at,omitempty"`
	Currency        string     `json:"currency"`
	TotalAmount     string     `json:"total_amount"`
	DiscountAmount  string     `json:"discount_amount,omitempty"`
	FreightAmount   string     `json:"freight_amount,omitempty"`
	PayAmount       string     `json:"pay_amount"`
	AftersaleStatus string     `json:"aftersale_status,omitempty"`
	Receiver        *Receiver  `json:"receiver,omitempty"`
	Items           []Item     `json:"items"`
	Waybills        []Waybill  `json:"waybills"`
}

// Receiver is where an order ships, masked.
type Receiver struct {
	Name     string `json:"name,omitempty"`
	Mobile   string `json:"mobile,omitempty"`
	Province string `json:"province,omitempty"`
	City     string `json:"city,omitempty"`
	District string `json:"district,omitempty"`
}

// Item is one order line.
type Item struct {
	SKUCode  string `json:"sku_code,omitempty"`
	Name     string `json:"name"`
	Spec     string `json:"spec,omitempty"`
	Quantity int    `json:"quantity"`
	Price    string `json:"price"`
	Amount   string `json:"amount"`
}

// Waybill is one shipment, for the logistics tool.
type Waybill struct {
	CarrierCode string     `json:"carrier_code"`
	CarrierName string     `json:"carrier_name,omitempty"`
	WaybillNo   string     `json:"waybill_no"`
	ShippedAt   *time.Time `json:"shipped_at,omitempty"`
}

// maskedOr masks v with mask unless the OMS already did.
func maskedOr(v string, mask func(string) string) string {
	if v == "" || strings.Contains(v, "*") {
		return v
	}
	return mask(v)
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

func cstTime(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := omswire.ParseTime(s)
	if err != nil {
		return nil
	}
	t = t.UTC()
	return &t
}

// mapOrder converts an order checked by omswire (Order.Check).
func mapOrder(o omswire.Order) Order {
	created, _ := omswire.ParseTime(o.CreatedAt)
	out := Order{OrderNo: o.OrderNo, Platform: o.Platform, PlatformOrderNo: clip(o.PlatformOrderNo, 64),
		ShopName: clip(o.ShopName, 256), Status: o.Status, StatusText: clip(o.StatusText, 64), CreatedAt: created.UTC(),
		PaidAt: cstTime(o.PaidAt), Currency: o.Currency, TotalAmount: o.TotalAmount, DiscountAmount: o.DiscountAmount,
		FreightAmount: o.FreightAmount, PayAmount: o.PayAmount, AftersaleStatus: clip(o.AftersaleStatus, 32),
		Items: make([]Item, 0, len(o.Items)), Waybills: make([]Waybill, 0, len(o.Waybills))}
	if out.Currency = strings.ToUpper(out.Currency); len(out.Currency) != 3 || strings.Trim(out.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		out.Currency = "CNY"
	}
	if !validToken(out.Platform) {
		out.Platform = ""
	}
	r := o.Receiver
	if r != (omswire.Receiver{}) {
		out.Receiver = &Receiver{Name: clip(maskedOr(r.Name, pii.MaskName), 64), Mobile: clip(maskedOr(r.Mobile, pii.MaskPhone), 32),
			Province: clip(r.Province, 64), City: clip(r.City, 64), District: clip(r.District, 64)}
	}
	for i, it := range o.Items {
		if i == 100 {
			break
		}
		out.Items = append(out.Items, Item{SKUCode: clip(it.SKUCode, 64), Name: clip(it.ItemName, 512), Spec: clip(it.Spec, 256),
			Quantity: it.Quantity, Price: it.Price, Amount: it.Amount})
	}
	for i, w := range o.Waybills {
		if i == 20 {
			break
		}
		out.Waybills = append(out.Waybills, Waybill{CarrierCode: clip(w.LogisticsCode, 32), CarrierName: clip(w.LogisticsName, 64),
			WaybillNo: clip(w.WaybillNo, 64), ShippedAt: cstTime(w.ShippedAt)})
	}
	return out
}

// validToken reports whether s matches ^[a-z][a-z0-9_]*$ within 32 bytes (the schema's platform).
func validToken(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
