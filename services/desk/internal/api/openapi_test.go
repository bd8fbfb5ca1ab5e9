package api

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes keeps openapi.json in step with Routes: every route is documented
// with its method and path parameters, nothing else is, and public routes say so.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	var doc struct {
		OpenAPI  string                                `json:"openapi"`
		Security []map[string][]string                 `json:"security"`
		Paths    map[string]map[string]json.RawMessage `json:"paths"`
		Comps    struct {
			Schemas         map[string]json.RawMessage `json:"schemas"`
			SecuritySchemes map[string]struct {
				Type, Scheme string
			} `json:"securitySchemes"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	if s := doc.Comps.SecuritySchemes["bearerAuth"]; s.Type != "http" || s.Scheme != "bearer" || len(doc.Security) != 1 {
		t.Fatalf("want a global bearerAuth requirement, got %+v %+v", doc.Security, doc.Comps.SecuritySchemes)
	}
	var documented, served []string
	opIDs := map[string]string{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
			var op struct {
				OperationID string `json:"operationId"`
				Security    *[]any `json:"security"`
				Parameters  []struct {
					Name, In string
				} `json:"parameters"`
				Responses map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			for _, seg := range strings.Split(path, "/") {
				if strings.HasPrefix(seg, "{") {
					name := strings.Trim(seg, "{}")
					if !slices.ContainsFunc(op.Parameters, func(p struct{ Name, In string }) bool { return p.Name == name && p.In == "path" }) {
						t.Errorf("%s %s: path parameter %s undocumented", method, path, name)
					}
				}
			}
			// Client generators name methods by operationId: every operation has one, unique.
			if op.OperationID == "" || opIDs[op.OperationID] != "" {
				t.Errorf("%s %s: operationId %q missing or also on %s", method, path, op.OperationID, opIDs[op.OperationID])
			}
			opIDs[op.OperationID] = method + " " + path
			public := op.Security != nil && len(*op.Security) == 0
			for _, r := range (&API{}).Routes() {
				if r.Method == strings.ToUpper(method) && r.Path == path && r.Public != public {
					t.Errorf("%s %s: public %v in openapi.json, %v in Routes", method, path, public, r.Public)
				}
			}
			if _, ok := op.Responses["401"]; !public && !ok {
				t.Errorf("%s %s: protected but no 401 response documented", method, path)
			}
		}
	}
	for _, r := range (&API{}).Routes() {
		served = append(served, r.Method+" "+r.Path)
	}
	sort.Strings(documented)
	sort.Strings(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.json paths and Routes differ:\n documented %v\n served     %v", documented, served)
	}
	// Every $ref names a schema that exists.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok && strings.HasPrefix(ref, "#/components/schemas/") {
				if _, ok := doc.Comps.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]; !ok {
					t.Errorf("dangling $ref %s", ref)
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	var all any
	_ = json.Unmarshal(OpenAPI(), &all)
	walk(all)
}
