// Package resiliencetest reads, in a connector's tests, the metrics pkg/resilience exports, as
// the process's /metrics would serve them.
package resiliencetest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Meter returns a meter provider exporting to a fresh Prometheus registry, for
// resilience.Options.MeterProvider, and that registry.
func Meter() (*sdkmetric.MeterProvider, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		panic(err) // only on a duplicate registration, impossible on a fresh registry
	}
	return sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)), reg
}

// InstallGlobal makes Meter's provider the global one (what a connector's Runtime.Resilience
// registry uses, as service.Main's telemetry does) and returns its registry. Call it from
// TestMain, before any registry is built.
func InstallGlobal() *prometheus.Registry {
	mp, reg := Meter()
	otel.SetMeterProvider(mp)
	return reg
}

// VendorCalls returns omnibus_vendor_calls_total of vendor/op in reg, by outcome.
func VendorCalls(t testing.TB, reg prometheus.Gatherer, vendor, op string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
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
