package telemetry

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
)

// exports is what the OTEL_* variables ask for.
type exports struct {
	traces         []otlptracehttp.Option // nil: no span export
	metrics        []otlpmetrichttp.Option
	metricInterval time.Duration
	traceURL       string
	metricURL      string
	serviceName    string
	resource       []attribute.KeyValue
}

func (e exports) describe() string {
	var parts []string
	if e.traceURL != "" {
		parts = append(parts, "traces to "+e.traceURL)
	}
	if e.metricURL != "" {
		parts = append(parts, fmt.Sprintf("metrics to %s every %s", e.metricURL, e.metricInterval))
	}
	return strings.Join(parts, ", ")
}

// exportConfig reads the OpenTelemetry SDK's standard variables
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
//
//   - OTEL_SDK_DISABLED=true: nothing exported (metrics still on /metrics);
//   - OTEL_EXPORTER_OTLP_ENDPOINT (base; /v1/traces and /v1/metrics appended) or the per-signal
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _METRICS_ENDPOINT (used as they are): where to send;
//     without any, nothing is exported (there is no collector to assume);
//   - OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER: otlp (the default when an endpoint is set) or
//     none (prometheus for metrics means /metrics only);
//   - OTEL_EXPORTER_OTLP_PROTOCOL (and _TRACES_/_METRICS_): http/protobuf only — grpc is refused
//     with the way out (collectors take OTLP/HTTP on :4318);
//   - OTEL_EXPORTER_OTLP_HEADERS (and per signal): key=value,... sent with every export;
//   - OTEL_METRIC_EXPORT_INTERVAL: milliseconds between metric pushes (default 60000);
//   - OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES: the resource.
//
// Batching (OTEL_BSP_*) and sampling (OTEL_TRACES_SAMPLER, _ARG) are read by the SDK itself.
func exportConfig(lookup func(string) (string, bool)) (exports, error) {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	var e exports
	e.serviceName = get("OTEL_SERVICE_NAME")
	if ra := get("OTEL_RESOURCE_ATTRIBUTES"); ra != "" {
		kv, err := keyValues(ra)
		if err != nil {
			return e, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		for k, v := range kv {
			e.resource = append(e.resource, attribute.String(k, v))
		}
	}
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return e, nil
	}
	base := get("OTEL_EXPORTER_OTLP_ENDPOINT")
	signal := func(name, path, exporterVar string) (string, map[string]string, error) {
		switch x := strings.ToLower(get(exporterVar)); x {
		case "", "otlp":
		case "none", "prometheus":
			return "", nil, nil
		default:
			return "", nil, fmt.Errorf("%s=%s: want otlp or none", exporterVar, x)
		}
		for _, pv := range []string{"OTEL_EXPORTER_OTLP_" + name + "_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
			if p := get(pv); p != "" {
				if p != "http/protobuf" {
					return "", nil, fmt.Errorf("%s=%s: omnibus exports OTLP over HTTP only; set http/protobuf and point the endpoint at the collector's OTLP/HTTP port (4318)", pv, p)
				}
				break
			}
		}
		u := get("OTEL_EXPORTER_OTLP_" + name + "_ENDPOINT")
		if u == "" && base != "" {
			u = strings.TrimRight(base, "/") + path
		}
		if u == "" {
			return "", nil, nil
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return "", nil, fmt.Errorf("OTLP %s endpoint %q: want an http(s) URL such as http://127.0.0.1:4318", strings.ToLower(name), u)
		}
		headers := map[string]string{}
		for _, hv := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_" + name + "_HEADERS"} {
			if h := get(hv); h != "" {
				kv, err := keyValues(h)
				if err != nil {
					return "", nil, fmt.Errorf("%s: %w", hv, err)
				}
				for k, v := range kv {
					headers[k] = v
				}
			}
		}
		return u, headers, nil
	}
	u, h, err := signal("TRACES", "/v1/traces", "OTEL_TRACES_EXPORTER")
	if err != nil {
		return e, err
	}
	if u != "" {
		e.traceURL = u
		e.traces = []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u)}
		if len(h) > 0 {
			e.traces = append(e.traces, otlptracehttp.WithHeaders(h))
		}
	}
	if u, h, err = signal("METRICS", "/v1/metrics", "OTEL_METRICS_EXPORTER"); err != nil {
		return e, err
	}
	if u != "" {
		e.metricURL = u
		e.metrics = []otlpmetrichttp.Option{otlpmetrichttp.WithEndpointURL(u)}
		if len(h) > 0 {
			e.metrics = append(e.metrics, otlpmetrichttp.WithHeaders(h))
		}
		e.metricInterval = time.Minute
		if iv := get("OTEL_METRIC_EXPORT_INTERVAL"); iv != "" {
			n, err := strconv.Atoi(iv)
			if err != nil || n < 100 {
				return e, fmt.Errorf("OTEL_METRIC_EXPORT_INTERVAL=%q: want milliseconds, at least 100", iv)
			}
			e.metricInterval = time.Duration(n) * time.Millisecond
		}
	}
	return e, nil
}

// keyValues parses the W3C-baggage-like lists of the OTEL_* variables: k=v,k2=v2 with
// percent-encoded values.
func keyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", part)
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		out[k] = dv
	}
	return out, nil
}
