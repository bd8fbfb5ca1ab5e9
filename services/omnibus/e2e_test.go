package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus/bustest"
)

// TestCustomerAcrossChannels runs the whole system as `go run ./services/omnibus` does, with the
// sandbox's scenario off, and drives one customer by hand: they write on WeChat (an encrypted
// WeCom callback and a kf/sync_msg pull, their phone carried by a signed scene_param), then text
// from the same phone by SMS (an Aliyun uplink push). The unifier must put both in one
// conversation; an agent's reply through the desk API must go out on the channel the customer
// used last, and the sandbox's Aliyun must have accepted it (it checks the ACS3 signature).
func TestCustomerAcrossChannels(t *testing.T) {
	t.Parallel()
	base := startSimulated(t) // browser_e2e_test.go

	call := func(method, path, token string, body any, out any) int {
		t.Helper()
		return apiCall(t, base, method, path, token, body, out)
	}

	var people struct {
		Customers []struct {
			ID    int
			Phone string
		}
	}
	// Services mount their routes as they start, just after the all-in-one reports ready.
	bustest.WaitFor(t, 30*time.Second, "the sandbox's customers", func() bool {
		return call("GET", "/sandbox/_admin/customers", "", nil, &people) == 200 && len(people.Customers) >= 5
	})
	who := people.Customers[4]

	// 1. WeChat.
	if code := call("POST", "/sandbox/_admin/customers/5/write", "", map[string]string{"channel": "wechatkf", "text": "你好，我的快递到哪了？"}, nil); code != 200 {
		t.Fatalf("wechat write: %d", code)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	bustest.WaitFor(t, 30*time.Second, "the desk's dev login", func() bool {
		return call("POST", "/desk/dev/login?agent=agent-li&format=token", "", nil, &tok) == 200 && tok.AccessToken != ""
	})
	type conv struct {
		ID             string   `json:"id"`
		CustomerID     string   `json:"customer_id"`
		Channels       []string `json:"channels"`
		CurrentChannel string   `json:"current_channel"`
		Status         string   `json:"status"`
	}
	list := func() []conv {
		var out struct {
			Conversations []conv `json:"conversations"`
		}
		if call("GET", "/api/conversations?limit=200", tok.AccessToken, nil, &out) != 200 {
			return nil
		}
		return out.Conversations
	}
	var first conv
	bustest.WaitFor(t, 30*time.Second, "the WeChat conversation on the desk", func() bool {
		for _, c := range list() {
			if len(c.Channels) == 1 && c.Channels[0] == "wechatkf" {
				first = c
				return true
			}
		}
		return false
	})

	// 2. SMS from the same phone: the same conversation, now on two channels.
	if code := call("POST", "/sandbox/_admin/customers/5/write", "", map[string]string{"channel": "sms", "text": "还没收到，麻烦查一下"}, nil); code != 200 {
		t.Fatalf("sms write: %d", code)
	}
	var joined conv
	bustest.WaitFor(t, 30*time.Second, "the SMS joined to the WeChat conversation", func() bool {
		for _, c := range list() {
			if c.ID == first.ID && len(c.Channels) == 2 && c.CurrentChannel == "sms" {
				joined = c
				return true
			}
		}
		return false
	})
	for _, c := range list() {
		if c.CustomerID == joined.CustomerID && c.ID != joined.ID {
			t.Fatalf("customer %s has a second conversation %s: the channels were not joined", c.CustomerID, c.ID)
		}
	}

	// 3. The agent replies without naming a channel: it goes out by SMS, the channel used last.
	after := lastRecord(t, base)
	if code := call("POST", "/api/conversations/"+joined.ID+"/reply", tok.AccessToken, map[string]string{"text": "您好，包裹今天派送"}, nil); code >= 300 {
		t.Fatalf("reply: %d", code)
	}
	local := strings.TrimPrefix(who.Phone, "+86")
	bustest.WaitFor(t, 30*time.Second, "the reply accepted by the sandbox's Aliyun SendSms", func() bool {
		for _, r := range records(t, base, "vendor=aliyun&op=SendSms&after="+after) {
			if r.Error == "" && strings.HasSuffix(r.To, local) && strings.Contains(string(r.Data), "包裹今天派送") {
				return true
			}
		}
		return false
	})
	if n := len(records(t, base, "vendor=wecom&op=kf/send_msg")); n != 0 {
		t.Fatalf("the reply also went out on WeChat (%d sends)", n)
	}
}

type record struct {
	Seq   int64           `json:"seq"`
	Op    string          `json:"op"`
	To    string          `json:"to"`
	Data  json.RawMessage `json:"data"`
	Error string          `json:"error"`
}

func records(t *testing.T, base, query string) []record {
	t.Helper()
	resp, err := http.Get(base + "/sandbox/_admin/records?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []record
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func lastRecord(t *testing.T, base string) string {
	recs := records(t, base, "")
	if len(recs) == 0 {
		return "0"
	}
	b, _ := json.Marshal(recs[len(recs)-1].Seq)
	return string(b)
}

// apiCall does a JSON request against the all-in-one, as an agent with token ("" for none), and
// decodes a 2xx answer into out; other answers are logged.
func apiCall(t *testing.T, base, method, path, token string, body, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// devToken signs in on the desk's development login (query: agent=...&role=...) and returns the
// bearer token, waiting for the desk to serve.
func devToken(t *testing.T, base, query string) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	bustest.WaitFor(t, 30*time.Second, "the desk's dev login", func() bool {
		return apiCall(t, base, "POST", "/desk/dev/login?"+query+"&format=token", "", nil, &tok) == 200 && tok.AccessToken != ""
	})
	return tok.AccessToken
}

// channelConversation waits for the desk's first conversation on channel alone and returns its id.
func channelConversation(t *testing.T, base, token, channel string) string {
	t.Helper()
	var id string
	bustest.WaitFor(t, 30*time.Second, "the "+channel+" conversation on the desk", func() bool {
		var out struct {
			Conversations []struct {
				ID       string   `json:"id"`
				Channels []string `json:"channels"`
			} `json:"conversations"`
		}
		if apiCall(t, base, "GET", "/api/conversations?limit=200", token, nil, &out) != 200 {
			return false
		}
		for _, c := range out.Conversations {
			if len(c.Channels) == 1 && c.Channels[0] == channel {
				id = c.ID
				return true
			}
		}
		return false
	})
	return id
}
