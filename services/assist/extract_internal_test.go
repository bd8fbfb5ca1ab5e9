package assist

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

func turnsOf(lines ...string) []Turn {
	var out []Turn
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i, l := range lines {
		role, text, _ := strings.Cut(l, ":")
		out = append(out, Turn{ID: "m" + string(rune('a'+i)), Role: role, Text: text, At: at.Add(time.Duration(i) * time.Second)})
	}
	return out
}

// TestExtractRules: identifiers in the OMS's, SF's and Cainiao's formats, amounts, the request
// and the business type, found by the rules in Chinese and English transcripts.
func TestExtractRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name                      string
		turns                     []Turn
		orders, waybills, amounts []string
		request, biz              string
		complaint, actionable     bool
	}{
		{name: "order refund spoken with spaces", turns: turnsOf("customer:你好", "customer:我的订单号是 SO 2612 0701 2345 6789，想退款 299 元", "agent:好的，已为您登记"),
			orders: []string{"SO2612070123456789"}, amounts: []string{"299.00"}, request: "我的订单号是 SO 2612 0701 2345 6789，想退款 299 元", biz: BizOrder, actionable: true},
		{name: "waybill", turns: turnsOf("customer:快递 SF1234567890123 三天没更新了，帮我查一下", "agent:正在查询"),
			waybills: []string{"SF1234567890123"}, request: "快递 SF1234567890123 三天没更新了，帮我查一下", biz: BizLogistics, actionable: true},
		{name: "cainiao and platform order", turns: turnsOf("customer:Where is my parcel YT7512345678901? The Tmall order is 2987654321098765432, I paid ¥59.9"),
			orders: []string{"2987654321098765432"}, waybills: []string{"YT7512345678901"}, amounts: []string{"59.90"},
			request: "Where is my parcel YT7512345678901? The Tmall order is 2987654321098765432, I paid ¥59.9", biz: BizOrder, actionable: true}, // a tie: order first
		{name: "complaint without numbers", turns: turnsOf("customer:你们客服态度太差了，我要投诉！"),
			request: "你们客服态度太差了，我要投诉！", biz: BizComplaint, complaint: true, actionable: true},
		{name: "greeting only", turns: turnsOf("customer:在吗", "agent:您好"), biz: BizOther},
		{name: "phone is not an order", turns: turnsOf("customer:我的手机 13800138000 登录不了账号"),
			request: "我的手机 13800138000 登录不了账号", biz: BizAccount},
		{name: "payment", turns: turnsOf("customer:I was charged twice, 120 yuan each, on my credit card"),
			amounts: []string{"120.00"}, request: "I was charged twice, 120 yuan each, on my credit card", biz: BizPayment, actionable: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := extractRules(tc.turns)
			if !slices.Equal(f.OrderNumbers, tc.orders) || !slices.Equal(f.Waybills, tc.waybills) || !slices.Equal(f.Amounts, tc.amounts) ||
				f.Request != tc.request || f.BusinessType != tc.biz || f.Complaint != tc.complaint || f.Actionable() != tc.actionable {
				t.Fatalf("got %+v (actionable %v)", f, f.Actionable())
			}
		})
	}
}

// TestParseExtraction: the model's answer is kept only where the transcript backs it.
func TestParseExtraction(t *testing.T) {
	t.Parallel()
	src := "[客户] 订单 SO2612070123456789 退款 299 元，电话 <PHONE_1>\n[坐席] 好的"
	cases := []struct {
		name, answer string
		want         Found
		err          bool
	}{
		{name: "grounded", answer: "```json\n{\"order_numbers\":[\"SO2612070123456789\",\"SO2612070000000000\"],\"waybills\":[\"SF1234567890123\"],\"amounts\":[\"299\",\"1000.00\",12],\"request\":\"退款\",\"business_type\":\"ORDER\",\"complaint\":false}\n```",
			want: Found{OrderNumbers: []string{"SO2612070123456789"}, Amounts: []string{"299.00"}, Request: "退款", BusinessType: BizOrder}},
		{name: "unknown type and string bool", answer: `{"order_numbers":[],"waybills":null,"amounts":[],"request":"x","business_type":"refunds","complaint":"true"}`,
			want: Found{Request: "x", BusinessType: BizOther, Complaint: true}},
		{name: "not json", answer: "订单 SO2612070123456789", err: true},
		{name: "wrong types", answer: `{"order_numbers":"SO2612070123456789"}`, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseExtraction(tc.answer, src)
			if (err != nil) != tc.err {
				t.Fatalf("err %v", err)
			}
			if err == nil && (!slices.Equal(f.OrderNumbers, tc.want.OrderNumbers) || !slices.Equal(f.Waybills, tc.want.Waybills) ||
				!slices.Equal(f.Amounts, tc.want.Amounts) || f.Request != tc.want.Request || f.BusinessType != tc.want.BusinessType || f.Complaint != tc.want.Complaint) {
				t.Fatalf("got %+v want %+v", f, tc.want)
			}
		})
	}
}

// TestRulesSummary: the extractive summary restates the first request and the last reply, lists
// what was found, and masks personal data for display.
func TestRulesSummary(t *testing.T) {
	t.Parallel()
	turns := turnsOf("customer:在吗", "customer:订单 SO2612070123456789 还没发货，我的电话 13800138000", "agent:已催仓库，今天发出")
	got := rulesSummary(turns, extractRules(turns), "zh")
	want := "客户诉求：订单 SO2612070123456789 还没发货，我的电话 138****8000。坐席答复：已催仓库，今天发出。订单号：SO2612070123456789。"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if got := rulesSummary(nil, Found{}, "en"); got != "The conversation has no text messages." {
		t.Fatal(got)
	}
}

// TestTranscriptBounds: turns are kept in time order within the turn and byte caps.
func TestTranscriptBounds(t *testing.T) {
	t.Parallel()
	var tr transcript
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for i := range 10 {
		tr.add(Turn{ID: string(rune('a' + i)), Text: strings.Repeat("x", 100), At: at.Add(time.Duration(i) * time.Second)}, 5, 450)
	}
	tr.add(Turn{ID: "late", Text: "y", At: at.Add(8500 * time.Millisecond)}, 5, 450)
	var ids []string
	for _, u := range tr.Turns {
		ids = append(ids, u.ID)
	}
	if want := []string{"g", "h", "i", "late", "j"}; !slices.Equal(ids, want) || tr.Dropped != 6 || !tr.seen("a") || !tr.seen("late") {
		t.Fatalf("turns %v dropped %d", ids, tr.Dropped)
	}
}

// FuzzParseExtraction: whatever the model answers, what is kept is bounded, canonical and
// backed by the transcript.
func FuzzParseExtraction(f *testing.F) {
	f.Add(`{"order_numbers":["SO2612070123456789"],"waybills":["SF1234567890123"],"amounts":["299.00"],"request":"退款","business_type":"order","complaint":false}`,
		"[客户] SO2612070123456789 SF1234567890123 299 元")
	f.Add("```json\n{\"amounts\":[1e308,-5,\"¥12.5\"],\"request\":\"\\u0000\"}\n```", "12.5 元")
	f.Add(`{"order_numbers":[{"x":1}],"business_type":7}`, "")
	f.Add(`}{`, `{}`)
	f.Fuzz(func(t *testing.T, answer, source string) {
		got, err := ParseExtraction(answer, source)
		if err != nil {
			return
		}
		src := squeeze(source)
		for _, v := range got.OrderNumbers {
			if !orderCanonRE.MatchString(v) || !strings.Contains(src, v) {
				t.Fatalf("order %q not canonical or not in the source", v)
			}
		}
		for _, v := range got.Waybills {
			if !waybillCanonRE.MatchString(v) || !strings.Contains(src, v) {
				t.Fatalf("waybill %q", v)
			}
		}
		for _, v := range got.Amounts {
			if !amountCanonRE.MatchString(v) {
				t.Fatalf("amount %q", v)
			}
		}
		if len(got.OrderNumbers) > maxFound || len(got.Waybills) > maxFound || len(got.Amounts) > maxFound ||
			utf8.RuneCountInString(got.Request) > maxRequest || !utf8.ValidString(got.Request) || !slices.Contains(BusinessTypes, got.BusinessType) {
			t.Fatalf("unbounded or invalid: %+v", got)
		}
	})
}

// FuzzParseSummary: a parsed summary is never empty, is valid UTF-8 within the schema's
// 4000 characters, and has a known business type.
func FuzzParseSummary(f *testing.F) {
	f.Add(`{"summary":"客户 <PHONE_1> 询问订单 SO2612070123456789","business_type":"order"}`)
	f.Add("Sure! ```json\n{\"summary\": \"x\"}\n```")
	f.Add(`{"summary":"   ","business_type":null}`)
	f.Add(`{"summary":"\xff\xfe"}`)
	f.Fuzz(func(t *testing.T, answer string) {
		got, err := ParseSummary(answer)
		if err != nil {
			return
		}
		if got.Summary == "" || !utf8.ValidString(got.Summary) || utf8.RuneCountInString(got.Summary) > maxText || !slices.Contains(BusinessTypes, got.BusinessType) {
			t.Fatalf("%+v", got)
		}
		// What is shown is masked: Redact leaves nothing the scanner finds.
		if fs := pii.Scan(pii.Redact(got.Summary)); len(fs) != 0 {
			t.Fatalf("redacted summary holds %+v", fs)
		}
	})
}

// BenchmarkExtractRules: the rules' extraction over a full transcript (200 turns), the fallback's
// cost per close or call end.
func BenchmarkExtractRules(b *testing.B) {
	var lines []string
	for i := range 200 {
		if i%2 == 0 {
			lines = append(lines, "customer:我的订单 SO2612070123456789 还没到，快递 SF1234567890123，付了 299 元，电话 13800138000")
		} else {
			lines = append(lines, "agent:好的，正在为您查询物流，请稍等")
		}
	}
	turns := turnsOf(lines...)
	b.ReportAllocs()
	for b.Loop() {
		f := extractRules(turns)
		_ = rulesSummary(turns, f, "zh")
	}
}
