package stats

import "testing"

func TestOf(t *testing.T) {
	ms := make([]float64, 100)
	for i := range ms {
		ms[i] = float64(100 - i) // 100 … 1, unsorted
	}
	d := Of(ms)
	if d.Samples != 100 || d.P50 != 50 || d.P90 != 90 || d.P99 != 99 || d.Max != 100 || d.Mean != 50.5 {
		t.Fatalf("%+v", d)
	}
	if ms[0] != 100 {
		t.Fatal("Of sorted its argument")
	}
	if d := Of(nil); d.Samples != 0 {
		t.Fatalf("no samples: %+v", d)
	}
}
