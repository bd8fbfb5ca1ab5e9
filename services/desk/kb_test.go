package desk_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
	"github.com/omnibus-dev/omnibus/services/desk/internal/kb"
	"github.com/omnibus-dev/omnibus/services/desk/internal/store"
)

type articles struct {
	Articles []store.Article `json:"articles"`
}

// TestKnowledgeBase: the demo articles are seeded once; Chinese and English questions find the
// right article; supervisors write the knowledge base and agents only read it; an AI suggestion
// request carries the articles that match the customer's turns.
func TestKnowledgeBase(t *testing.T) {
	t.Parallel()
	b := bustest.New(t, bus.WithLogger(quiet()))
	d := startDesk(t, b, map[string]string{"DESK_ASSIGN": "false"})
	const base = "/api/kb/articles"

	var all articles
	if code := d.call(t, d.token, "GET", base, nil, &all); code != 200 || len(all.Articles) != len(kb.Seeds()) {
		t.Fatalf("GET %s: %d, %d articles, want the %d seeds", base, code, len(all.Articles), len(kb.Seeds()))
	}
	if again, err := d.store.SeedArticles(context.Background(), kb.Seeds()); err != nil || again {
		t.Fatalf("seeded again: %v %v", again, err)
	}

	t.Run("Search", func(t *testing.T) {
		for q, want := range map[string]string{
			"你好，我的银行卡被重复扣款了两次":                             "银行卡重复扣款",
			"银行卡被扣了两次款":                                    "银行卡重复扣款",
			"退款多久能到账？":                                     "退款到账时间",
			"快递三天没更新了，是不是延误了":                              "快递延误怎么办",
			"会员积分怎么抵扣":                                     "会员等级与积分",
			"I was charged twice on my card for one order": "Double charge on a bank card",
			"my parcel is late, no tracking update":        "Parcel delayed",
			"how do membership points work":                "Membership tiers and points",
		} {
			var got articles
			if code := d.call(t, d.token, "GET", base+"?q="+url.QueryEscape(q), nil, &got); code != 200 || len(got.Articles) == 0 {
				t.Fatalf("search %q: %d %+v", q, code, got)
			}
			if got.Articles[0].Title != want {
				t.Errorf("search %q: first %q, want %q", q, got.Articles[0].Title, want)
			}
		}
		var none articles
		if code := d.call(t, d.token, "GET", base+"?q="+url.QueryEscape("火星探测器"), nil, &none); code != 200 || len(none.Articles) != 0 {
			t.Errorf("search for nothing related: %d %+v", code, none)
		}
	})

	t.Run("Write", func(t *testing.T) {
		body := map[string]any{"title": "发票开具", "body": "电子发票在订单完成后 24 小时内发送到预留邮箱。", "tags": []string{"发票"}, "language": "zh"}
		if code := d.call(t, d.token, "POST", base, body, nil); code != 403 {
			t.Fatalf("an agent created an article: %d", code)
		}
		var a store.Article
		if code := d.call(t, d.super, "POST", base, body, &a); code != 201 || a.ID == "" || a.UpdatedBy != "supervisor-wang" {
			t.Fatalf("create: %d %+v", code, a)
		}
		body["body"] = "电子发票在订单完成后 48 小时内发送到预留邮箱。"
		if code := d.call(t, d.super, "PUT", base+"/"+a.ID, body, &a); code != 200 || a.Body != body["body"] {
			t.Fatalf("update: %d %+v", code, a)
		}
		var found articles
		if d.call(t, d.token, "GET", base+"?q="+url.QueryEscape("发票什么时候发"), nil, &found); len(found.Articles) == 0 || found.Articles[0].ID != a.ID {
			t.Fatalf("the new article is not found: %+v", found)
		}
		for name, bad := range map[string]map[string]any{
			"no title":     {"title": "", "body": "x", "language": "zh"},
			"bad language": {"title": "x", "body": "x", "language": "fr"},
		} {
			if code := d.call(t, d.super, "POST", base, bad, nil); code != 400 {
				t.Errorf("%s: %d, want 400", name, code)
			}
		}
		if code := d.call(t, d.token, "DELETE", base+"/"+a.ID, nil, nil); code != 403 {
			t.Fatalf("an agent deleted an article: %d", code)
		}
		if code := d.call(t, d.super, "DELETE", base+"/"+a.ID, nil, nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		if code := d.call(t, d.token, "GET", base+"/"+a.ID, nil, nil); code != 404 {
			t.Fatalf("deleted article: %d", code)
		}
		if code := d.call(t, d.super, "PUT", base+"/not-a-uuid", body, nil); code != 404 {
			t.Fatalf("PUT of no article: %d", code)
		}
	})

	t.Run("SuggestionRequestCarriesArticles", func(t *testing.T) {
		w := newWorld(t, b)
		w.customer("王芳", nil)
		w.opened("wechatkf")
		w.inbound("wechatkf", "wechat_openid", "oWx-wangfang", "我的银行卡被重复扣款了两次，怎么办", time.Now().UTC().Add(-time.Minute), "wechatkf")
		path := "/api/conversations/" + w.conv + "/tools/ai/suggest"
		bustest.WaitFor(t, 10*time.Second, "the AI request accepted", func() bool { return d.call(t, d.token, "POST", path, nil, nil) == 202 })
		req := dataOf(t, lastEvent(t, b, bus.StreamTool, "omni.tool.ai.suggest.requested"))
		knowledge, _ := req["knowledge"].([]any)
		if len(knowledge) == 0 || len(knowledge) > 3 {
			t.Fatalf("request knowledge %v", req["knowledge"])
		}
		first, _ := knowledge[0].(map[string]any)
		if first["title"] != "银行卡重复扣款" || first["id"] == "" || first["body"] == "" {
			t.Fatalf("first article %v", first)
		}
	})
}
