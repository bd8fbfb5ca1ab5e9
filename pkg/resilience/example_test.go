package resilience_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/omnibus-dev/omnibus/pkg/audit"
	"github.com/omnibus-dev/omnibus/pkg/resilience"
)

// A connector's vendor call: the route is built once; each request is a few lines, and a failure
// comes with the manual path for the agent.
func Example() {
	// A vendor that answers like SF Express: HTTP 200 with a result code in the body.
	sf := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, "SF0000000000") {
			fmt.Fprint(w, `{"apiResultCode":"A1001","apiErrorMsg":"waybill does not belong to this account"}`)
			return
		}
		fmt.Fprint(w, `{"apiResultCode":"A1000","routes":[{"remark":"已签收"}]}`)
	}))
	defer sf.Close()

	records := &audit.Memory{} // in a service: resilience.Options{Bus: d.Bus} publishes them
	res, _ := resilience.New(resilience.Options{Service: "logistics", Audit: records})
	defer res.Close(context.Background())
	track := res.MustRoute(resilience.RouteSpec{
		Vendor: "sfexpress", Op: "route_query", Idempotent: true,
		CodeOf: resilience.JSONCode("apiResultCode"),
		Codes:  resilience.Codes{"A1000": resilience.ClassSuccess, "A1001": resilience.ClassPermanent},
		Fallback: func(c resilience.Call, _ error) *resilience.Fallback {
			return &resilience.Fallback{ManualURL: "https://www.sf-express.com/chn/sc/waybill/waybill-detail/" + c.Key}
		},
	})

	for _, waybill := range []string{"SF1234567890", "SF0000000000"} {
		var answer struct {
			Routes []struct {
				Remark string `json:"remark"`
			} `json:"routes"`
		}
		_, err := track.HTTP(context.Background(), resilience.Call{CustomerID: "c-1", Key: waybill},
			func(ctx context.Context) (*http.Request, error) {
				return http.NewRequestWithContext(ctx, http.MethodGet, sf.URL+"/route?waybill="+waybill, nil)
			}, &answer)
		var fail *resilience.Error
		switch {
		case err == nil:
			fmt.Println(waybill, "completed:", answer.Routes[0].Remark)
		case errors.As(err, &fail):
			fmt.Println(waybill, "failed:", fail.Outcome, fail.Code(), "→", fail.Fallback.ManualURL)
		}
	}
	for _, r := range records.Records() {
		fmt.Println("audit:", r.Vendor, r.Op, r.Outcome, r.Code, r.Attempts)
	}
	// Output:
	// SF1234567890 completed: 已签收
	// SF0000000000 failed: permanent A1001 → https://www.sf-express.com/chn/sc/waybill/waybill-detail/SF0000000000
	// audit: sfexpress route_query ok A1000 1
	// audit: sfexpress route_query permanent A1001 1
}
