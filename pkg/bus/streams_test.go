package bus_test

import (
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/bus"
)

func TestStreamOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, subject, stream string
	}{
		{"inbound", "omni.in.wechatkf.message.p3", bus.StreamIn},
		{"outbound pattern", "omni.out.sms.>", bus.StreamOut},
		{"tool", "omni.tool.crm.lookup.request", bus.StreamTool},
		{"desk", "omni.desk.conversation.updated", bus.StreamDesk},
		{"audit", "omni.audit.crm", bus.StreamAudit},
		{"dead letters", bus.SubjectDLQ("crm"), bus.StreamDLQ},
		{"ops", "omni.ops.alert.raised", bus.StreamOps},
		{"redrive", "omni.redrive.crm-lookup", bus.StreamRedrive},
		{"no stream", "elsewhere.x", ""},
		{"a prefix without its dot", "omni.inbox", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := bus.StreamOf(tt.subject)
			if got != tt.stream || ok != (tt.stream != "") {
				t.Fatalf("StreamOf(%q) = %q, %v; want %q", tt.subject, got, ok, tt.stream)
			}
		})
	}
	// Every stream's subjects map back to it: there is no second table to fall out of step.
	for _, sc := range bus.Streams(bus.StreamsConfig{}) {
		for _, subj := range sc.Subjects {
			if got, _ := bus.StreamOf(subj); got != sc.Name {
				t.Errorf("StreamOf(%q) = %q, want %s", subj, got, sc.Name)
			}
		}
	}
}
