package sentiment

import (
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/config"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string // a fragment of the error; "" for none
	}{
		{"defaults", nil, ""},
		{"tencent without keys is not an error", map[string]string{"SENTIMENT_PROVIDER": "Tencent"}, ""},
		{"unknown provider", map[string]string{"SENTIMENT_PROVIDER": "tencnet"}, "did you mean tencent?"},
		{"bad base", map[string]string{"SENTIMENT_API_BASE": "nlp.tencentcloudapi.com"}, "want an http(s) URL"},
		{"no budget", map[string]string{"SENTIMENT_BUDGET": "0s"}, "SENTIMENT_BUDGET"},
		{"leave below enter", map[string]string{"SENTIMENT_ENTER": "-0.2", "SENTIMENT_LEAVE": "-0.5"}, "must be above Enter"},
		{"short ttl", map[string]string{"SENTIMENT_EPISODE_TTL": "1m"}, "SENTIMENT_EPISODE_TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			err := config.Load(&c, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	var c Config
	_ = config.Load(&c, func(k string) (string, bool) {
		return map[string]string{"SENTIMENT_PROVIDER": "aliyun"}[k], k == "SENTIMENT_PROVIDER"
	})
	if ok, why := c.configured(); ok || !strings.Contains(why, "SENTIMENT_ALIYUN_ACCESS_KEY_ID") {
		t.Fatalf("configured %v %q", ok, why)
	}
}
