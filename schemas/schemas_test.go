package schemas

import (
	"slices"
	"testing"
)

func TestTypesMatching(t *testing.T) {
	all := Types()
	if !slices.Contains(all, TypeChannelMessageReceived) || slices.ContainsFunc(all, func(s string) bool { return s == "common.defs" }) {
		t.Fatalf("Types: %v", all)
	}
	got := TypesMatching("omni.tool.crm.*.*")
	if !slices.Equal(got, []string{TypeToolCrmLookupCompleted, TypeToolCrmLookupFailed, TypeToolCrmLookupRequested}) {
		t.Fatalf("omni.tool.crm.*.*: %v", got)
	}
	if got := TypesMatching("omni.ops.alert.>"); !slices.Equal(got, []string{TypeOpsAlertRaised, TypeOpsAlertResolved}) {
		t.Fatalf("omni.ops.alert.>: %v", got)
	}
	if got := TypesMatching("omni.ops.>"); !slices.Contains(got, TypeOpsDlqAction) || !slices.Contains(got, TypeOpsAlertRaised) || slices.Contains(got, TypeToolCrmLookupCompleted) {
		t.Fatalf("omni.ops.>: %v", got)
	}
	if got := TypesMatching("omni.tool.*.*.requested"); slices.Contains(got, TypeToolCrmLookupCompleted) || !slices.Contains(got, TypeToolAiSuggestRequested) {
		t.Fatalf("requested: %v", got)
	}
	if got := TypesMatching("omni.ops"); len(got) != 0 {
		t.Fatalf("a prefix matched: %v", got)
	}
}
