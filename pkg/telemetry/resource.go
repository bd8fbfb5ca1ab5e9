package telemetry

import "go.opentelemetry.io/otel/attribute"

func attributeServiceName(name string) attribute.KeyValue {
	return attribute.String("service.name", name)
}
