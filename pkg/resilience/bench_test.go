package resilience_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// BenchmarkPipelineOverhead compares a plain HTTP call to a local vendor with the same call
// through a route (limiter, bulkhead, breaker, timeout, retry policy, span, metrics, audit entry
// masked in memory). It reports each side's p99 and the ratio of mean latencies.
//
//	go test ./pkg/resilience -run '^$' -bench PipelineOverhead -benchtime 2000x
func BenchmarkPipelineOverhead(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"errcode":0,"routes":[{"remark":"已签收"}]}`)
	}))
	defer srv.Close()
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer client.CloseIdleConnections()
	newReq := func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/route?waybill=SF1234567890", nil)
	}
	reg, err := resilience.New(resilience.Options{Service: "bench", Audit: audit.Discard, HTTPClient: client})
	if err != nil {
		b.Fatal(err)
	}
	rt := reg.MustRoute(resilience.RouteSpec{Vendor: "sfexpress", Op: "route_query", Idempotent: true, CodeOf: resilience.JSONCode("errcode"),
		Settings: resilience.Settings{Timeout: time.Second}})
	direct := func() {
		req, _ := newReq(context.Background())
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	piped := func() {
		if _, err := rt.HTTP(context.Background(), resilience.Call{}, newReq, nil); err != nil {
			b.Fatal(err)
		}
	}
	measure := func(n int, fn func()) (mean, p99 time.Duration) {
		lat := make([]time.Duration, n)
		var sum time.Duration
		for i := range n {
			start := time.Now()
			fn()
			lat[i] = time.Since(start)
			sum += lat[i]
		}
		slices.Sort(lat)
		return sum / time.Duration(n), lat[min(n-1, n*99/100)]
	}
	for range 50 { // warm the connection pool
		direct()
		piped()
	}
	b.ResetTimer()
	n := b.N
	dMean, dP99 := measure(n, direct)
	pMean, pP99 := measure(n, piped)
	b.StopTimer()
	b.ReportMetric(float64(dMean.Microseconds()), "direct-mean-µs")
	b.ReportMetric(float64(pMean.Microseconds()), "pipeline-mean-µs")
	b.ReportMetric(float64(dP99.Microseconds()), "direct-p99-µs")
	b.ReportMetric(float64(pP99.Microseconds()), "pipeline-p99-µs")
	b.ReportMetric(float64(pMean)/float64(dMean), "mean-ratio")
	b.ReportMetric(float64(pP99)/float64(dP99), "p99-ratio")
}
