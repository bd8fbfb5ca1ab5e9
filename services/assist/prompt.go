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
