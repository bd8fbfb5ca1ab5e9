package openai

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is the simulated model's JSON mode: answers to summary and extraction prompts,
// grounded in the transcript of the user messages.

// JSONFields are the answer fields the simulator knows, in the order it writes them.
var JSONFields = []string{"summary", "business_type", "order_numbers", "waybills", "amounts", "request", "complaint"}

var (
	orderNoRE = regexp.MustCompile(`SO[0-9]{16}`)
	waybillRE = regexp.MustCompile(`(?:SF|YT)[0-9]{12,13}`)
	yuanRE    = regexp.MustCompile(`(?:[¥￥]\s?([0-9]+(?:\.[0-9]{1,2})?))|(?:([0-9]+(?:\.[0-9]{1,2})?)\s?(?:元|块|yuan))`)
)

// turnLine is one line of a transcript: who and what.
type turnLine struct {
	customer bool
	text     string
}

// transcript reads the user and assistant messages as turns: lines "[客户] ..." / "[坐席] ..."
// (as the assist connector writes a transcript; the other lines are then instructions), else
// user messages as the customer's and assistant messages as the agent's.
func transcript(messages []Message) []turnLine {
	// When any line is marked, the unmarked ones are the prompt's instructions, not turns.
	marked := false
	for _, m := range messages {
		if m.Role != "system" && (strings.Contains(m.Content, "[客户]") || strings.Contains(m.Content, "[坐席]")) {
			marked = true
		}
	}
	var out []turnLine
	for _, m := range messages {
		if m.Role == "system" {
			continue
		}
		for _, l := range strings.Split(m.Content, "\n") {
			l = strings.TrimSpace(l)
			switch {
			case l == "":
			case strings.HasPrefix(l, "[客户]"):
				out = append(out, turnLine{true, strings.TrimSpace(strings.TrimPrefix(l, "[客户]"))})
			case strings.HasPrefix(l, "[坐席]"):
				out = append(out, turnLine{false, strings.TrimSpace(strings.TrimPrefix(l, "[坐席]"))})
			case !marked:
				out = append(out, turnLine{m.Role == "user", l})
			}
		}
	}
	return out
}

// fields are the properties the answer must have: the json_schema's, else the known fields the
// system message names in quotes or as words.
func fields(messages []Message, rf *ResponseFormat) ([]string, error) {
	if rf.Type == "json_schema" {
		if rf.JSONSchema == nil {
			return nil, errors.New("json_schema requires json_schema.schema")
		}
		var sc struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(rf.JSONSchema.Schema, &sc); err != nil || len(sc.Properties) == 0 {
			return nil, errors.New("json_schema.schema must be an object schema with properties")
		}
		var out []string
		for _, f := range JSONFields {
			if _, ok := sc.Properties[f]; ok {
				out = append(out, f)
			}
		}
		return out, nil
	}
	var system strings.Builder
	for _, m := range messages {
		if m.Role == "system" {
			system.WriteString(m.Content)
		}
	}
	if !strings.Contains(strings.ToLower(system.String()), "json") {
		// OpenAI refuses json_object when no message mentions JSON.
		return nil, errors.New("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'")
	}
	var out []string
	for _, f := range JSONFields {
		if strings.Contains(system.String(), `"`+f+`"`) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		out = []string{"summary"}
	}
	return out, nil
}

// businessWords are the words a model reads a business type from (a few of each).
var businessWords = []struct {
	biz   string
	words []string
}{
	{"order", []string{"订单", "退款", "退货", "换货", "order", "refund", "return"}},
	{"logistics", []string{"快递", "物流", "包裹", "派送", "parcel", "delivery", "shipping"}},
	{"payment", []string{"扣款", "扣了", "银行卡", "信用卡", "账单", "支付", "付款", "payment", "charged", "card"}},
	{"account", []string{"账号", "登录", "密码", "会员", "account", "login", "password"}},
}

// business is the type with the most words in the customer's text (an order number counts for
// order, a waybill for logistics; ties go to the earlier type), complaint when they complain,
// other when nothing matched.
func business(low string, orders, waybills int, complaint bool) string {
	if complaint {
		return "complaint"
	}
	best, bestN := "other", 0
	for _, b := range businessWords {
		n := 0
		for _, w := range b.words {
			n += strings.Count(low, w)
		}
		switch b.biz {
		case "order":
			n += orders
		case "logistics":
			n += waybills
		}
		if n > bestN {
			best, bestN = b.biz, n
		}
	}
	return best
}

// JSONReply is the simulator's answer in JSON mode: one object with the fields asked for
// (fields), each grounded in the transcript — summary restates the customer's first request (request),
// the order numbers, waybills and amounts found and the agent's last reply; order_numbers
// (SO + 16 digits), waybills (SF or YT + 12-13 digits) and amounts (¥ before or 元 after, as
// "299.00") are those in the text, in order; request is the customer's first line longer than a greeting (4 characters); complaint is
// whether the customer wrote 投诉 or "complain"; business_type follows from those (business).
func JSONReply(messages []Message, rf *ResponseFormat) (string, error) {
	want, err := fields(messages, rf)
	if err != nil {
		return "", err
	}
	turns := transcript(messages)
	var all, customer strings.Builder
	first, last := "", ""
	for _, t := range turns {
		all.WriteString(t.text + "\n")
		if t.customer {
			customer.WriteString(t.text + "\n")
			if first == "" && utf8.RuneCountInString(t.text) > 4 { // past the greetings (喂你好, 在吗, hello)
				first = t.text
			}
		} else {
			last = t.text
		}
	}
	orders := unique(orderNoRE.FindAllString(all.String(), -1))
	waybills := unique(waybillRE.FindAllString(all.String(), -1))
	var amounts []string
	for _, m := range yuanRE.FindAllStringSubmatch(all.String(), -1) {
		v := m[1] + m[2]
		if !strings.Contains(v, ".") {
			v += ".00"
		} else if len(v)-strings.IndexByte(v, '.') == 2 {
			v += "0"
		}
		amounts = unique(append(amounts, v))
	}
	low := strings.ToLower(customer.String())
	complaint := strings.Contains(low, "投诉") || strings.Contains(low, "complain")
	biz := business(low, len(orders), len(waybills), complaint)
	zh := strings.ContainsFunc(all.String(), func(r rune) bool { return unicode.Is(unicode.Han, r) })
	out := map[string]any{}
	for _, f := range want {
		switch f {
		case "summary":
			out[f] = summary(zh, first, last, orders, waybills, amounts)
		case "business_type":
			out[f] = biz
		case "order_numbers":
			out[f] = nonNil(orders)
		case "waybills":
			out[f] = nonNil(waybills)
		case "amounts":
			out[f] = nonNil(amounts)
		case "request":
			out[f] = first
		case "complaint":
			out[f] = complaint
		}
	}
	// A model writes <PHONE_1>, not \u003cPHONE_1\u003e.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err = enc.Encode(out)
	return strings.TrimSpace(b.String()), err
}

// summary restates a transcript: the customer's first line, what was found, the agent's last.
func summary(zh bool, first, last string, orders, waybills, amounts []string) string {
	var parts []string
	if zh {
		parts = append(parts, "客户诉求："+strings.TrimRight(first, "。？！"))
		if len(orders) > 0 {
			parts = append(parts, "涉及订单 "+strings.Join(orders, "、"))
		}
		if len(waybills) > 0 {
			parts = append(parts, "运单 "+strings.Join(waybills, "、"))
		}
		if len(amounts) > 0 {
			parts = append(parts, "金额 "+strings.Join(amounts, "、")+" 元")
		}
		if last != "" {
			parts = append(parts, "坐席答复："+strings.TrimRight(last, "。？！"))
		}
		return strings.Join(parts, "。") + "。"
	}
	parts = append(parts, "The customer asked: "+strings.TrimRight(first, ".?!"))
	if len(orders) > 0 {
		parts = append(parts, "Orders: "+strings.Join(orders, ", "))
	}
	if len(waybills) > 0 {
		parts = append(parts, "Waybills: "+strings.Join(waybills, ", "))
	}
	if len(amounts) > 0 {
		parts = append(parts, "Amounts: "+strings.Join(amounts, ", ")+" yuan")
	}
	if last != "" {
		parts = append(parts, "The agent replied: "+strings.TrimRight(last, ".?!"))
	}
	return strings.Join(parts, ". ") + "."
}

func unique(xs []string) []string {
	var out []string
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}
