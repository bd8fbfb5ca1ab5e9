package assist

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/pii"
)

// The prompt template. Changing its text changes TemplateSHA256, which every result's provenance
// carries; bump TemplateID with a change of meaning.
const (
	TemplateID = "assist.suggest.v2"
	template   = `你是客服坐席的助手。根据下面的对话，为坐席写一条可以直接发给客户的回复，用{{language}}，简洁、礼貌，不要编造订单、物流或退款信息；不确定时请客户稍候，由坐席核实。` +
		`形如 <PHONE_1>、<ID_CARD_1>、<BANK_CARD_1>、<EMAIL_1> 的占位符代表已隐藏的个人信息，需要提到时原样写出占位符。` +
		`下面若附有知识库文章，回复须以文章为依据，不要承诺文章之外的内容。只输出回复本身。`
	// knowledgeHead introduces the articles; each follows as "[kb:<id>] <title>" and its body.
	knowledgeHead = "知识库文章（按相关度排序）："
)

// TemplateSHA256 is the hex SHA-256 of the template's text.
var TemplateSHA256 = func() string { s := sha256.Sum256([]byte(template)); return hex.EncodeToString(s[:]) }()

// languages names the request's language in the prompt; others are named by their tag.
var languages = map[string]string{"zh": "中文", "en": "English", "ja": "日本語", "ko": "한국어"}

// message is one chat message of the request to the vendor.
type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// turn is one turn of the request's context.
type turn struct {
	Role    string `json:"role"`
	Text    string `json:"text"`
	Channel string `json:"channel,omitempty"`
}

// article is a knowledge-base article of the request (tool.defs.json knowledgeArticle).
type article struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Body     string   `json:"body"`
	Language string   `json:"language,omitempty"`
	Tags     []string `json:"tags,omitempty"`
}

// buildPrompt turns the conversation into chat messages: the template, then the knowledge-base
// articles (each "[kb:<id>] <title>" and its body), as the system message; customers' turns as
// user messages, agents' as assistant messages and tools' as user messages marked as system
// information. Every personal datum in the turns is replaced by its placeholder in ph (articles
// are the contact centre's own text, sent as they are).
func buildPrompt(turns []turn, articles []article, language string, ph *pii.Placeholders) []message {
	lang := language
	if base, _, _ := strings.Cut(language, "-"); languages[base] != "" {
		lang = languages[base]
	}
	if lang == "" {
		lang = languages["zh"]
	}
	system := strings.ReplaceAll(template, "{{language}}", lang)
	if len(articles) > 0 {
		var b strings.Builder
		b.WriteString(system + "\n\n" + knowledgeHead)
		for _, a := range articles {
			b.WriteString("\n[kb:" + a.ID + "] " + oneLine(a.Title) + "\n" + a.Body)
		}
		system = b.String()
	}
	msgs := []message{{Role: "system", Content: system}}
	for _, t := range turns {
		text := ph.Replace(t.Text)
		switch t.Role {
		case "agent":
			msgs = append(msgs, message{Role: "assistant", Content: text})
		case "tool":
			msgs = append(msgs, message{Role: "user", Content: "（系统信息）" + text})
		default:
			msgs = append(msgs, message{Role: "user", Content: text})
		}
	}
	return msgs
}

// oneLine joins a text's lines with spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// The summary and extraction templates: system messages for a transcript sent as one user
// message, one line per turn ("[客户] ..." or "[坐席] ..."; transcriptLines), personal data
// replaced by placeholders. Each asks for one JSON object; its JSON Schema is in the text (for
// response_format json_object) and in response_format (json_schema).
const (
	SummaryTemplateID = "assist.summary.v1"
	summaryTemplate   = `你是客服质检助手。下面是一段已结束的客服会话（电话通话已转成文字），每行以 [客户] 或 [坐席] 开头。` +
		`请用会话的语言（中文会话用中文，英文会话用英文）写 1-3 句摘要：客户要什么、坐席做了什么、还有什么待办；` +
		`写明出现的订单号、运单号和金额，不要编造。形如 <PHONE_1>、<ID_CARD_1>、<BANK_CARD_1>、<EMAIL_1> 的占位符代表已隐藏的个人信息，需要时原样写出。` +
		`再判断业务类型 business_type：order（订单、退换货、退款）、logistics（快递、物流、运单）、payment（支付、扣款、发票）、account（账号、会员、登录）、complaint（投诉服务本身）、other。` +
		`只输出一个 JSON 对象，符合 JSON Schema：` + summarySchema

	ExtractTemplateID = "assist.extract.v1"
	extractTemplate   = `你是客服工单助手。下面是一段已结束的客服会话（电话通话已转成文字），每行以 [客户] 或 [坐席] 开头。` +
		`找出会话中出现的：订单号 order_numbers（如 SO2612070123456789）、快递运单号 waybills（如 SF1234567890123、YT7512345678901）、金额 amounts（以元计，两位小数的字符串，如 "299.00"），` +
		`客户的诉求 request（一句话，用会话的语言；没有诉求时为空字符串），业务类型 business_type（order、logistics、payment、account、complaint、other），` +
		`以及客户是否在投诉 complaint（true/false）。只列出会话原文中出现的号码和金额，不要编造；没有就给空数组。` +
		`形如 <PHONE_1> 的占位符代表已隐藏的个人信息，不是订单号。只输出一个 JSON 对象，符合 JSON Schema：` + extractSchema

	summarySchema = `{"type":"object","additionalProperties":false,"required":["summary","business_type"],"properties":{"summary":{"type":"string"},"business_type":{"type":"string","enum":["order","logistics","payment","account","complaint","other"]}}}`
	extractSchema = `{"type":"object","additionalProperties":false,"required":["order_numbers","waybills","amounts","request","business_type","complaint"],"properties":{"order_numbers":{"type":"array","items":{"type":"string"}},"waybills":{"type":"array","items":{"type":"string"}},"amounts":{"type":"array","items":{"type":"string"}},"request":{"type":"string"},"business_type":{"type":"string","enum":["order","logistics","payment","account","complaint","other"]},"complaint":{"type":"boolean"}}}`
)

// SummaryTemplateSHA256 and ExtractTemplateSHA256 are the hex SHA-256 of the templates' text.
var (
	SummaryTemplateSHA256 = func() string { s := sha256.Sum256([]byte(summaryTemplate)); return hex.EncodeToString(s[:]) }()
	ExtractTemplateSHA256 = func() string { s := sha256.Sum256([]byte(extractTemplate)); return hex.EncodeToString(s[:]) }()
)

// roleLabels prefix a transcript's lines.
var roleLabels = map[string]string{"customer": "[客户] ", "agent": "[坐席] "}

// transcriptLines writes turns one per line, personal data replaced by its placeholder in ph.
func transcriptLines(turns []Turn, ph *pii.Placeholders) string {
	var b strings.Builder
	for _, t := range turns {
		b.WriteString(roleLabels[t.Role])
		b.WriteString(oneLine(ph.Replace(t.Text)))
		b.WriteByte('\n')
	}
	return b.String()
}

// jobPrompt is the chat messages of a summary or extraction: the template as the system
// message, the transcript as the user message.
func jobPrompt(template, transcript string) []message {
	return []message{{Role: "system", Content: template}, {Role: "user", Content: transcript}}
}
