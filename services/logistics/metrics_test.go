package logistics_test

import (
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// promRegistry is what the process's /metrics would serve: the connector's resilience registry
// takes the global meter provider, installed here as service.Main's telemetry does.
var promRegistry = prometheus.NewRegistry()

func TestMain(m *testing.M) {
	exp, err := otelprom.New(otelprom.WithRegisterer(promRegistry), otelprom.WithoutScopeInfo())
	if err != nil {
		panic(err)
	}
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)))
	os.Exit(m.Run())
}

// vendorCalls returns omnibus_vendor_calls_total of vendor/op by outcome.
func vendorCalls(t testing.TB, vendor, op string) map[string]float64 {
	t.Helper()
	families, err := promRegistry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "omnibus_vendor_calls_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["vendor"] == vendor && labels["op"] == op {
				out[labels["outcome"]] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}
