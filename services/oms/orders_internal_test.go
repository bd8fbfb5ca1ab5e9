package oms

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	omswire "github.com/omnibus-dev/omnibus/pkg/wire/oms"
)

const samplePage = `{"code":0,"msg":"success","request_id":"r1","data":{"total":1,"page":1,"page_size":10,"orders":[{"order_no":"SO2611201234567890","platform":"tmall","platform_order_no":"2987654321098765432","shop_name":"星河家居天猫旗舰店","status":"SENT","status_text":"已发货","created_at":"2026-11-20 14:03:11","paid_at":"2026-11-20 14:04:02","currency":"CNY","total_amount":"299.00","discount_amount":"20.00","freight_amount":"0.00","pay_amount":"279.00","buyer_mobile":"138****8000","receiver":{"name":"张伟","mobile":"13800138000","province":"上海","city":"上海市","district":"浦东新区","address":"世纪大道100号"},"items":[{"sku_code":"SKU-1001","item_name":"真空保温杯","spec":"500ml 白色","quantity":1,"price":"299.00","amount":"299.00"}],"waybills":[{"logistics_code":"SF","logistics_name":"顺丰速运","waybill_no":"SF1234567890123","shipped_at":"2026-11-21 09:00:00"}],"aftersale_status":"NONE"}]}}`

func TestMapOrder(t *testing.T) {
	t.Parallel()
	var page omswire.OrderPage
	if err := omswire.ParseResponse(200, nil, []byte(samplePage), &page); err != nil {
		t.Fatal(err)
	}
	o := mapOrder(page.Orders[0])
	if !o.CreatedAt.Equal(time.Date(2026, 11, 20, 6, 3, 11, 0, time.UTC)) || o.Waybills[0].ShippedAt.Hour() != 1 {
		t.Fatalf("times not converted from CST: %v %v", o.CreatedAt, o.Waybills[0].ShippedAt)
	}
	// An OMS that returns the receiver unmasked is masked here; the address line is dropped.
	if o.Receiver.Name != "张*" || o.Receiver.Mobile != "138****8000" || o.Items[0].Name != "真空保温杯" ||
		o.Waybills[0].CarrierCode != "SF" || o.Waybills[0].WaybillNo != "SF1234567890123" {
		t.Fatalf("%+v", o)
	}
	b, _ := json.Marshal(o)
	if strings.Contains(string(b), "世纪大道") || len(pii.Scan(string(b))) > 0 {
		t.Fatalf("personal data in %s", b)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	var cl Closed
	cl.Conversation.ID, cl.Conversation.Channels = "c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f", []string{"wechatkf", "sms"}
	cl.Conversation.OpenedAt = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	cl.Conversation.ClosedAt = cl.Conversation.OpenedAt.Add(20 * time.Minute)
	cl.Conversation.Assignee, cl.Reason = "agent-0042", "已退款，客户手机 13800138000"
	s := summary(cl)
	want := "客服会话（wechatkf、sms）2026-11-27 16:00:00 至 2026-11-27 16:20:00，历时 20m0s。结束原因：已退款，客户手机 138****8000。处理客服：agent-0042。omnibus 会话 c1d2e3f4-a5b6-5c7d-8e9f-0a1b2c3d4e5f。"
	if s != want || outcome(cl) != "resolved" {
		t.Fatalf("%s", s)
	}
	cl.Reason = "idle"
	if outcome(cl) != "idle" || !strings.Contains(summary(cl), "自动关闭") {
		t.Fatal(summary(cl))
	}
}

// FuzzMapOrders: whatever the OMS answers, what passes omswire's checks maps to a schema-valid
// completed event without unmasked phones.
func FuzzMapOrders(f *testing.F) {
	f.Add([]byte(samplePage))
	f.Add([]byte(`{"code":0,"msg":"success","request_id":"r","data":{"total":0,"page":1,"page_size":5,"orders":[]}}`))
	f.Add([]byte(strings.Replace(samplePage, `"platform":"tmall"`, `"platform":"Tmall 天猫","currency":"rmb"`, 1)))
	f.Fuzz(func(t *testing.T, body []byte) {
		var page omswire.OrderPage
		if omswire.ParseResponse(200, nil, body, &page) != nil {
			return
		}
		orders := make([]Order, 0, len(page.Orders))
		for i, o := range page.Orders {
			if i == 20 {
				break
			}
			orders = append(orders, mapOrder(o))
		}
		isFound, total, now := len(orders) > 0, page.Total, time.Now().UTC()
		ans := LookupAnswer{Query: AnswerQuery{Kind: "phone", Masked: pii.MaskPhone("+8613800138000")}, Found: &isFound,
			Total: &total, AsOf: &now, Orders: &orders}
		b, _ := json.Marshal(ans)
		if err := schema.Default().Validate(TypeLookupCompleted, b); err != nil {
			t.Fatalf("not schema-valid: %v\n%s", err, b)
		}
		for _, o := range orders {
			if o.Receiver != nil && len(pii.Scan(o.Receiver.Mobile)) > 0 {
				t.Fatalf("receiver phone unmasked: %q", o.Receiver.Mobile)
			}
		}
	})
}
