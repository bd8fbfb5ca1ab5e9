package assist_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/services/assist"
	"github.com/omnibus-dev/omnibus/services/sandbox/openai"
	"github.com/omnibus-dev/omnibus/services/sandbox/sim"
)

type kbArticle struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Body     string `json:"body"`
	Language string `json:"language,omitempty"`
}

var articles = []kbArticle{
	{ID: "kb-double-charge", Title: "银行卡重复扣款", Body: "重复扣款的金额会在 1-3 个工作日内原路退回。如超时未到账，请提供扣款截图。", Language: "zh"},
	{ID: "kb-refund", Title: "退款时效", Body: "退款审核通过后 3-7 个工作日到账。", Language: "zh"},
}

// requestWithKnowledge publishes a request carrying knowledge-base articles, as the desk does.
func (tb testBundle) requestWithKnowledge(t testing.TB, text string, kb []kbArticle) string {
	t.Helper()
	return tb.publishRequest(t, map[string]any{"conversation_id": convID, "customer_id": custID, "language": "zh",
		"context": []turn{{"customer", text}}, "agent_id": "demo", "knowledge": kb})
}

// TestKnowledgeGroundsTheSuggestion: the request's articles go into the prompt, the model answers
// from the first, and the provenance names them.
func TestKnowledgeGroundsTheSuggestion(t *testing.T) {
	t.Parallel()
	tb := setup(t, nil)
	id := tb.requestWithKnowledge(t, "我的卡 "+bankCard+" 被扣了两次款", articles)
	e := tb.answer(t, id)
	if e.Type() != assist.TypeCompleted {
		t.Fatalf("%s: %s", e.Type(), e.Data())
	}
	var r struct {
		Suggestions []struct{ Text string } `json:"suggestions"`
		Provenance  struct {
			PromptTemplateID    string   `json:"prompt_template_id"`
			KnowledgeArticleIDs []string `json:"knowledge_article_ids"`
		} `json:"provenance"`
	}
	if err := json.Unmarshal(e.Data(), &r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Suggestions[0].Text, "根据《银行卡重复扣款》：重复扣款的金额会在 1-3 个工作日内原路退回。") ||
		!strings.Contains(r.Suggestions[0].Text, bankCard) {
		t.Fatalf("suggestion not grounded in the article: %s", r.Suggestions[0].Text)
	}
	if !slices.Equal(r.Provenance.KnowledgeArticleIDs, []string{"kb-double-charge", "kb-refund"}) || r.Provenance.PromptTemplateID != assist.TemplateID {
		t.Fatalf("provenance %+v", r.Provenance)
	}
	recs := tb.env.Records(sim.Filter{Vendor: openai.Vendor})
	if len(recs) != 1 {
		t.Fatalf("%d vendor calls", len(recs))
	}
	var sent openai.Request
	if err := json.Unmarshal(recs[0].Data, &sent); err != nil {
		t.Fatal(err)
	}
	if sys := sent.Messages[0]; sys.Role != "system" || !strings.Contains(sys.Content, "[kb:kb-double-charge] 银行卡重复扣款\n重复扣款") ||
		!strings.Contains(sys.Content, "[kb:kb-refund] 退款时效") {
		t.Fatalf("system message %q", sys.Content)
	}
	noPII(t, "the prompt", string(recs[0].Data))
}

// TestFallbackArticles: a model that is down, or writes nothing within
// ASSIST_FIRST_TOKEN_TIMEOUT, is answered with .failed at once, its fallback carrying the
// request's articles for the agent to answer from.
func TestFallbackArticles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault sim.Fault
		env   map[string]string
		code  string
	}{
		{name: "silent", fault: sim.Fault{Latency: 2 * time.Second}, code: "first_token_timeout"},
		{name: "down", env: map[string]string{"ASSIST_API_BASE": "http://127.0.0.1:1/v1"}},
		{name: "erroring", fault: sim.Fault{ErrorRatio: 1, Code: "503"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, tc.env)
			if tc.fault != (sim.Fault{}) {
				if err := tb.env.SetFault(chatKey, tc.fault); err != nil {
					t.Fatal(err)
				}
			}
			id := tb.requestWithKnowledge(t, "扣了两次款", articles)
			e := tb.answer(t, id)
			var r struct {
				ErrorCode string `json:"error_code"`
				Fallback  struct {
					Note     string      `json:"note"`
					Articles []kbArticle `json:"articles"`
				} `json:"fallback"`
			}
			if err := json.Unmarshal(e.Data(), &r); err != nil {
				t.Fatal(err)
			}
			if e.Type() != assist.TypeFailed || r.Fallback.Note == "" || !slices.Equal(r.Fallback.Articles, articles) ||
				(tc.code != "" && r.ErrorCode != tc.code) {
				t.Fatalf("%s %s", e.Type(), e.Data())
			}
		})
	}
}
