package assist

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file finds what the business cares about in a transcript — order numbers in the OMS's
// formats, SF and Cainiao waybills, amounts, the customer's request, the business type — by
// rules, and reads (and checks) the model's JSON answers to the summary and extraction prompts.

// Business types (tool.defs.json businessType).
const (
	BizOrder     = "order"
	BizLogistics = "logistics"
	BizPayment   = "payment"
	BizAccount   = "account"
	BizComplaint = "complaint"
	BizOther     = "other"
)

// BusinessTypes lists the business types, in the order rules break ties.
var BusinessTypes = []string{BizOrder, BizLogistics, BizPayment, BizAccount, BizComplaint, BizOther}

// Limits of an extraction.
const (
	maxFound   = 10  // order numbers, waybills or amounts kept
	maxRequest = 300 // characters of the customer's request
)

var (
	// orderRE: the OMS's order numbers (SO, yymmdd, 10 digits; pkg/wire/oms and the sandbox
	// OMS), spoken or typed with spaces or dashes between digit groups.
	orderRE = regexp.MustCompile(`(?i)\bSO(?:[ -]?[0-9]){16}\b`)
	// platformOrderRE: a marketplace's order number the OMS keeps as platform_order_no (19 digits
	// starting with 2, as Tmall's), not glued to other digits.
	platformOrderRE = regexp.MustCompile(`2[0-9]{18}`)
	// waybillRE: SF Express (SF + 12 or 13 digits) and the Cainiao carriers' numbers (YT, JT,
	// ZT, YD, ST + 12-13 digits; JD + 2 letters + 11-12 digits).
	waybillRE = regexp.MustCompile(`(?i)\b(?:(?:SF|YT|JT|ZT|YD|ST)(?:[ -]?[0-9]){12,13}|JD[A-Z]{2}[0-9]{11,12})\b`)
	// amountRE: an amount in yuan: ¥/￥/RMB before, or 元/块/yuan/RMB/CNY after.
	amountRE = regexp.MustCompile(`(?i)(?:[¥￥]\s?|RMB\s?|CNY\s?)[0-9]{1,9}(?:\.[0-9]{1,2})?|[0-9]{1,9}(?:\.[0-9]{1,2})?\s?(?:元|块钱|块|yuan|rmb|cny)`)
	// numberRE: any number, to check that an amount the model names was in the text.
	numberRE = regexp.MustCompile(`[0-9]{1,9}(?:\.[0-9]{1,2})?`)
	// canonical forms of what an extraction keeps.
	orderCanonRE   = regexp.MustCompile(`^(?:SO[0-9]{16}|2[0-9]{18})$`)
	waybillCanonRE = regexp.MustCompile(`^(?:(?:SF|YT|JT|ZT|YD|ST)[0-9]{12,13}|JD[A-Z]{2}[0-9]{11,12})$`)
	amountCanonRE  = regexp.MustCompile(`^[0-9]{1,9}\.[0-9]{2}$`)
)

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// squeeze removes the spaces and dashes between an identifier's characters and upper-cases it.
func squeeze(s string) string { return strings.ToUpper(separators.Replace(s)) }

var separators = strings.NewReplacer(" ", "", "-", "")

// canonAmount writes an amount with two decimals ("" when it is not one).
func canonAmount(s string) string {
	s = strings.TrimSpace(strings.TrimLeft(s, "¥￥"))
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || f >= 1e9 || !numberRE.MatchString(s) {
		return ""
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

// addUnique appends v to xs unless present or xs is full.
func addUnique(xs []string, v string) []string {
	if v == "" || len(xs) >= maxFound || slices.Contains(xs, v) {
		return xs
	}
	return append(xs, v)
}

// Found is what an extraction found in a transcript.
type Found struct {
	OrderNumbers []string `json:"order_numbers"`
	Waybills     []string `json:"waybills"`
	Amounts      []string `json:"amounts"`
	// Request is the customer's request in a sentence ("" when there is none).
	Request      string `json:"request"`
	BusinessType string `json:"business_type"`
	Complaint    bool   `json:"complaint"`
}

// identifiers reports whether f names an order, a waybill or an amount.
func (f Found) identifiers() bool {
	return len(f.OrderNumbers)+len(f.Waybills)+len(f.Amounts) > 0
}

// Actionable reports whether f is worth a ticket: an order, waybill or amount with the
// customer's request, or a complaint.
func (f Found) Actionable() bool {
	return (f.identifiers() && strings.TrimSpace(f.Request) != "") || f.Complaint
}

// findIdentifiers returns the order numbers, waybills and amounts in the turns, in order of
// appearance, canonical. It matches turn by turn, and only turns with digits: on short texts Go's
// regexp takes its backtracking path, much faster than the NFA a whole transcript needs.
func findIdentifiers(turns []Turn) (orders, waybills, amounts []string) {
	for _, t := range turns {
		if strings.ContainsAny(t.Text, "0123456789") {
			orders, waybills, amounts = findIn(t.Text, orders, waybills, amounts)
		}
	}
	return orders, waybills, amounts
}

// findIn adds the order numbers, waybills and amounts in text to those given.
func findIn(text string, orders, waybills, amounts []string) ([]string, []string, []string) {
	for _, m := range orderRE.FindAllString(text, -1) {
		orders = addUnique(orders, squeeze(m))
	}
	for _, loc := range platformOrderRE.FindAllStringIndex(text, -1) {
		if (loc[0] == 0 || !isDigit(text[loc[0]-1])) && (loc[1] == len(text) || !isDigit(text[loc[1]])) {
			orders = addUnique(orders, text[loc[0]:loc[1]])
		}
	}
	for _, m := range waybillRE.FindAllString(text, -1) {
		waybills = addUnique(waybills, squeeze(m))
	}
	for _, m := range amountRE.FindAllString(text, -1) {
		amounts = addUnique(amounts, canonAmount(numberRE.FindString(m)))
	}
	return orders, waybills, amounts
}

// keywords of the business types, lower case, Chinese and English.
var keywords = map[string][]string{
	BizComplaint: {"投诉", "12315", "举报", "差评", "态度差", "态度太差", "太差劲", "曝光", "消协", "骗子", "complain", "complaint", "your manager", "supervisor", "unacceptable", "ridiculous", "terrible service"},
	BizOrder:     {"订单", "退款", "退货", "换货", "下单", "取消", "售后", "发错", "少发", "漏发", "商品", "order", "refund", "return", "exchange", "cancel", "wrong item"},
	BizLogistics: {"快递", "物流", "包裹", "运单", "单号", "派送", "配送", "签收", "发货", "没收到", "未收到", "顺丰", "菜鸟", "圆通", "驿站", "parcel", "package", "delivery", "deliver", "shipping", "shipped", "tracking", "courier", "waybill"},
	BizPayment:   {"支付", "付款", "扣款", "扣费", "扣了", "银行卡", "信用卡", "发票", "账单", "分期", "到账", "支付宝", "微信支付", "payment", "paid", "charged", "charge", "invoice", "bill", "credit card"},
	BizAccount:   {"账号", "帐号", "账户", "登录", "登陆", "密码", "会员", "积分", "注销", "实名", "绑定", "手机号", "account", "login", "log in", "password", "membership", "points", "sign in"},
}

// classify is the rules' business type of the customer's text: complaint when a complaint
// term is there; else the type with the most keyword hits (an order number counts for order, a
// waybill for logistics), ties broken in BusinessTypes order; other when nothing matched.
func classify(customerText string, f Found) string {
	low := strings.ToLower(customerText)
	for _, k := range keywords[BizComplaint] {
		if strings.Contains(low, k) {
			return BizComplaint
		}
	}
	best, bestN := BizOther, 0
	for _, b := range []string{BizOrder, BizLogistics, BizPayment, BizAccount} {
		n := 0
		for _, k := range keywords[b] {
			n += strings.Count(low, k)
		}
		switch b {
		case BizOrder:
			n += len(f.OrderNumbers)
		case BizLogistics:
			n += len(f.Waybills)
		}
		if n > bestN {
			best, bestN = b, n
		}
	}
	return best
}

// greetings are customer turns that carry no request.
var greetings = []string{"你好", "您好", "在吗", "在不在", "有人吗", "喂", "hi", "hello", "hey", "谢谢", "好的", "嗯", "ok", "okay", "thanks", "thank you"}

// substantive reports whether a customer turn says more than a greeting.
func substantive(text string) bool {
	t := strings.ToLower(strings.TrimFunc(text, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) }))
	for _, g := range greetings {
		t = strings.TrimSpace(strings.ReplaceAll(t, g, ""))
	}
	t = strings.TrimFunc(t, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) })
	return utf8.RuneCountInString(t) >= 2
}

// firstRequest is the customer's first turn that says more than a greeting.
func firstRequest(turns []Turn) string {
	for _, t := range turns {
		if t.Role == "customer" && substantive(t.Text) {
			return oneLine(t.Text)
		}
	}
	return ""
}

// lastReply is the agent's last turn.
func lastReply(turns []Turn) string {
	for i := len(turns) - 1; i >= 0; i-- {
		if turns[i].Role == "agent" {
			return oneLine(turns[i].Text)
		}
	}
	return ""
}

// customerText joins the customer's turns.
func customerText(turns []Turn) string {
	var b strings.Builder
	for _, t := range turns {
		if t.Role == "customer" {
			b.WriteString(t.Text)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// extractRules is the rules' extraction: identifiers from every turn, the request from the
// customer's first substantive turn, the business type and complaint flag from the customer's
// turns.
func extractRules(turns []Turn) Found {
	var f Found
	f.OrderNumbers, f.Waybills, f.Amounts = findIdentifiers(turns)
	f.Request = truncate(firstRequest(turns), maxRequest)
	f.BusinessType = classify(customerText(turns), f)
	f.Complaint = f.BusinessType == BizComplaint
	return f
}

// hasHan reports whether s holds a Chinese character.
func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

// language is zh when the customer (or anyone) wrote Chinese, else en.
func language(turns []Turn) string {
	for _, t := range turns {
		if hasHan(t.Text) {
			return "zh"
		}
	}
	return "en"
}

// Errors of the model-answer parsers.
var (
	errNoJSON    = errors.New("the model's answer holds no JSON object")
	errBadAnswer = errors.New("the model's answer does not match the schema")
)

// jsonObject returns the JSON object in a model's answer: the answer itself, or the first
// {...} in it (models wrap JSON in ```json fences or a sentence).
func jsonObject(text string) ([]byte, error) {
	s := strings.TrimSpace(text)
	i := strings.IndexByte(s, '{')
	j := strings.LastIndexByte(s, '}')
	if i < 0 || j < i {
		return nil, errNoJSON
	}
	return []byte(s[i : j+1]), nil
}

// SummaryAnswer is the model's answer to the summary prompt.
type SummaryAnswer struct {
	Summary      string `json:"summary"`
	BusinessType string `json:"business_type"`
}

// ParseSummary reads the model's answer to the summary prompt: a JSON object with a non-empty
// summary (cut to the schema's 4000 characters) and a business type (other when it names none
// the schema knows). Errors: errNoJSON, errBadAnswer, or the JSON decoder's.
func ParseSummary(text string) (SummaryAnswer, error) {
	raw, err := jsonObject(text)
	if err != nil {
		return SummaryAnswer{}, err
	}
	var a struct {
		Summary      any `json:"summary"`
		BusinessType any `json:"business_type"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return SummaryAnswer{}, errors.Join(errBadAnswer, err)
	}
	s, _ := a.Summary.(string)
	s = strings.TrimSpace(strings.ToValidUTF8(s, ""))
	if s == "" {
		return SummaryAnswer{}, errBadAnswer
	}
	b, _ := a.BusinessType.(string)
	return SummaryAnswer{Summary: truncate(s, maxText), BusinessType: businessType(b)}, nil
}

// businessType returns b when it is a business type, else other.
func businessType(b string) string {
	b = strings.ToLower(strings.TrimSpace(b))
	if slices.Contains(BusinessTypes, b) {
		return b
	}
	return BizOther
}

// ParseExtraction reads the model's answer to the extraction prompt and keeps what is
// grounded in source (the transcript as the model saw it): order numbers and waybills in a
// known format that occur in source, amounts whose number occurs in source, a request cut to
// 300 characters, a known business type (other otherwise). Each list holds at most 10 distinct
// values. Errors: errNoJSON, errBadAnswer, or the JSON decoder's.
func ParseExtraction(text, source string) (Found, error) {
	raw, err := jsonObject(text)
	if err != nil {
		return Found{}, err
	}
	var a struct {
		OrderNumbers []any `json:"order_numbers"`
		Waybills     []any `json:"waybills"`
		Amounts      []any `json:"amounts"`
		Request      any   `json:"request"`
		BusinessType any   `json:"business_type"`
		Complaint    any   `json:"complaint"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return Found{}, errors.Join(errBadAnswer, err)
	}
	src := squeeze(source)
	numbers := map[string]bool{}
	for _, n := range numberRE.FindAllString(source, -1) {
		numbers[canonAmount(n)] = true
	}
	var f Found
	for _, v := range a.OrderNumbers {
		if s, ok := v.(string); ok {
			if s = squeeze(s); orderCanonRE.MatchString(s) && strings.Contains(src, s) {
				f.OrderNumbers = addUnique(f.OrderNumbers, s)
			}
		}
	}
	for _, v := range a.Waybills {
		if s, ok := v.(string); ok {
			if s = squeeze(s); waybillCanonRE.MatchString(s) && strings.Contains(src, s) {
				f.Waybills = addUnique(f.Waybills, s)
			}
		}
	}
	for _, v := range a.Amounts {
		var s string
		switch x := v.(type) {
		case string:
			s = canonAmount(strings.TrimSpace(strings.TrimRight(strings.TrimSpace(x), "元")))
		case float64:
			s = canonAmount(strconv.FormatFloat(x, 'f', -1, 64))
		}
		if s != "" && amountCanonRE.MatchString(s) && numbers[s] {
			f.Amounts = addUnique(f.Amounts, s)
		}
	}
	if s, ok := a.Request.(string); ok {
		f.Request = truncate(oneLine(strings.ToValidUTF8(s, "")), maxRequest)
	}
	b, _ := a.BusinessType.(string)
	f.BusinessType = businessType(b)
	switch x := a.Complaint.(type) {
	case bool:
		f.Complaint = x
	case string:
		f.Complaint = strings.EqualFold(x, "true")
	}
	if f.BusinessType == BizComplaint {
		f.Complaint = true
	}
	return f, nil
}
