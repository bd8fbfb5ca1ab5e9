package assign

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestChoose(t *testing.T) {
	t.Parallel()
	li := Candidate{ID: "li", Skills: []string{"logistics", "vip"}, Languages: []string{"zh", "en"}, Capacity: 5, Active: true}
	chen := Candidate{ID: "chen", Skills: []string{"billing"}, Languages: []string{"zh"}, Channels: []string{"wechatkf", "webchat"}, Capacity: 5, Active: true}
	emma := Candidate{ID: "emma", Skills: []string{"logistics", "billing"}, Languages: []string{"en"}, Capacity: 4, Active: true}
	with := func(c Candidate, load int) Candidate { c.Load = load; return c }
	away := func(c Candidate) Candidate { c.Active = false; return c }

	tests := []struct {
		name   string
		need   Need
		agents []Candidate
		want   string // agent id, "" for none
		rule   string
	}{
		{"least loaded among matches", Need{Channel: "wechatkf", Language: "zh"}, []Candidate{with(li, 3), with(chen, 1), with(emma, 0)}, "chen", RuleLeastLoaded},
		{"language filters", Need{Channel: "sms", Language: "en"}, []Candidate{with(li, 2), with(emma, 3)}, "li", RuleLeastLoaded},
		{"channel filters", Need{Channel: "sms", Language: "zh"}, []Candidate{with(li, 4), with(chen, 0)}, "li", RuleLeastLoaded},
		{"skill filters", Need{Channel: "wechatkf", Language: "zh", Skills: []string{"billing"}}, []Candidate{with(li, 0), with(chen, 4)}, "chen", RuleLeastLoaded},
		{"all skills required", Need{Channel: "webchat", Skills: []string{"logistics", "vip"}}, []Candidate{with(emma, 0), with(li, 4)}, "li", RuleLeastLoaded},
		{"sticky to the last agent", Need{Channel: "wechatkf", Language: "zh", LastAgent: "li"}, []Candidate{with(li, 4), with(chen, 0)}, "li", RuleSticky},
		{"sticky ignores language and skills", Need{Channel: "sms", Language: "zh", Skills: []string{"billing"}, LastAgent: "emma"}, []Candidate{with(li, 0), with(emma, 1)}, "emma", RuleSticky},
		{"sticky needs capacity", Need{Channel: "wechatkf", Language: "zh", LastAgent: "li"}, []Candidate{with(li, 5), with(chen, 2)}, "chen", RuleLeastLoaded},
		{"sticky needs the agent active", Need{Channel: "wechatkf", LastAgent: "li"}, []Candidate{away(li), with(chen, 2)}, "chen", RuleLeastLoaded},
		{"sticky needs the channel", Need{Channel: "sms", LastAgent: "chen"}, []Candidate{with(chen, 0), with(li, 3)}, "li", RuleLeastLoaded},
		{"unknown last agent", Need{Channel: "wechatkf", LastAgent: "gone"}, []Candidate{with(chen, 1)}, "chen", RuleLeastLoaded},
		{"relaxed when nobody speaks it", Need{Channel: "wechatkf", Language: "fr"}, []Candidate{with(li, 2), with(chen, 1)}, "chen", RuleRelaxed},
		{"relaxed when nobody has the skill", Need{Channel: "sms", Skills: []string{"after_sales"}}, []Candidate{with(li, 1), with(emma, 0)}, "emma", RuleRelaxed},
		{"relaxed still respects the channel", Need{Channel: "sms", Language: "fr"}, []Candidate{with(chen, 0)}, "", ""},
		{"everyone full", Need{Channel: "wechatkf"}, []Candidate{with(li, 5), with(chen, 5), with(emma, 4)}, "", ""},
		{"inactive skipped", Need{Channel: "wechatkf"}, []Candidate{away(with(li, 0)), with(emma, 3)}, "emma", RuleLeastLoaded},
		{"zero capacity never assigned", Need{Channel: "wechatkf"}, []Candidate{{ID: "z", Active: true}}, "", ""},
		{"tie broken by load ratio", Need{}, []Candidate{with(emma, 2), with(li, 2)}, "li", RuleLeastLoaded},
		{"tie broken by id", Need{}, []Candidate{with(li, 1), {ID: "ann", Capacity: 5, Active: true, Load: 1}}, "ann", RuleLeastLoaded},
		{"unknown language matches anyone", Need{Channel: "webchat"}, []Candidate{with(emma, 1), with(chen, 2)}, "emma", RuleLeastLoaded},
		{"no agents", Need{Channel: "sms"}, nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, ok := Choose(tc.need, tc.agents)
			if ok != (tc.want != "") || d.AgentID != tc.want || d.Rule != tc.rule {
				t.Fatalf("Choose = %+v, %v; want %q by %q", d, ok, tc.want, tc.rule)
			}
			if ok && d.Note == "" {
				t.Error("decision without a note")
			}
		})
	}
}

// An agent who lists no languages takes any language.
func TestChooseAgentWithoutLanguages(t *testing.T) {
	t.Parallel()
	d, ok := Choose(Need{Language: "ja"}, []Candidate{{ID: "poly", Capacity: 2, Active: true}, {ID: "li", Languages: []string{"zh"}, Capacity: 2, Active: true}})
	if !ok || d.AgentID != "poly" || d.Rule != RuleLeastLoaded {
		t.Fatalf("got %+v %v, want poly least_loaded", d, ok)
	}
}

func TestDetectLanguage(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]string{
		"你好，我想查询一下订单 20261127001 的物流":          "zh",
		"Where is my parcel SF1234567890?":     "en",
		"ok":                                   "",
		"12345 !!!":                            "",
		"我的 order 呢":                           "zh",
		"Hello 你好 this is mostly English text": "en",
		"": "",
	} {
		if got := DetectLanguage(text); got != want {
			t.Errorf("DetectLanguage(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestSkills(t *testing.T) {
	t.Parallel()
	tests := []struct {
		profile, text string
		want          []string
	}{
		{`{}`, "你好", nil},
		{`{"vip_level": "gold"}`, "hi", []string{"vip"}},
		{`{"vip_level": "none"}`, "hi", nil},
		{`{"vip": true}`, "hi", []string{"vip"}},
		{`{"tier": 0}`, "hi", nil},
		{`{}`, "我的快递到哪了", []string{"logistics"}},
		{`{}`, "SF1234567890123", []string{"logistics"}},
		{`{}`, "I want a refund for my parcel", []string{"logistics", "billing"}},
		{`{"vip_level": "2"}`, "退款", []string{"vip", "billing"}},
		{`not json`, "invoice", []string{"billing"}},
	}
	for _, tc := range tests {
		if got := Skills(json.RawMessage(tc.profile), tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("Skills(%s, %q) = %v, want %v", tc.profile, tc.text, got, tc.want)
		}
	}
}

func FuzzDetectLanguage(f *testing.F) {
	for _, s := range []string{"你好", "hello", "SF1234567890", "こんにちは", "\xff\xfe", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := DetectLanguage(s); got != "" && got != "zh" && got != "en" {
			t.Fatalf("DetectLanguage(%q) = %q", s, got)
		}
		_ = Skills(json.RawMessage(s), s)
	})
}
