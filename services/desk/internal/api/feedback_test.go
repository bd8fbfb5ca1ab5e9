package api

import "testing"

func TestEditDistance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"您好", "您好", 0}, {"您好", "你好", 1}, {"", "退款", 2}, {"kitten", "sitting", 3},
		{"重复扣款会原路退回。", "重复扣款会在 3 天内原路退回。", 6},
	} {
		if got := EditDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
