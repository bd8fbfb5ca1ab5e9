package main

import (
	"bytes"
	"os"
	"testing"
)

// types.go is what gentypes writes for today's schema files.
func TestTypesUpToDate(t *testing.T) {
	want, err := render(os.DirFS("../.."))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../types.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("schemas/types.go is stale: run go generate ./schemas/...")
	}
}

func TestConstName(t *testing.T) {
	for typ, want := range map[string]string{
		"omni.channel.message.received":         "TypeChannelMessageReceived",
		"omni.tool.ai.suggest.completed":        "TypeToolAiSuggestCompleted",
		"omni.channel.call.segment.transcribed": "TypeChannelCallSegmentTranscribed",
	} {
		if got := ConstName(typ); got != want {
			t.Errorf("ConstName(%q) = %q, want %q", typ, got, want)
		}
	}
}
