package schema_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/schemas"
)

// TestHandler: every type's schema is served byte for byte at /schemas/<type>.json with its media
// type, the index lists them all, a cached copy revalidates with 304, and nothing outside the
// embedded files is reachable.
func TestHandler(t *testing.T) {
	t.Parallel()
	reg := schema.Default()
	mux := http.NewServeMux()
	mux.Handle("GET "+schema.Path, reg.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	type answer struct {
		StatusCode int
		Header     http.Header
	}
	do := func(method, path string, h map[string]string) (answer, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, resp.Header}, string(b)
	}

	var index struct {
		Fingerprint, AsyncAPI string
		Types                 []struct {
			Type, Schema string
			ID           string `json:"$id"`
		}
	}
	resp, body := do("GET", "/schemas/", nil)
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &index) != nil {
		t.Fatalf("index: %d %s", resp.StatusCode, body)
	}
	if len(index.Types) != len(reg.Types()) || index.Fingerprint != reg.Fingerprint() || index.AsyncAPI != srv.URL+"/schemas/asyncapi.yaml" {
		t.Fatalf("index lists %d types (want %d), fingerprint %q, asyncapi %q", len(index.Types), len(reg.Types()), index.Fingerprint, index.AsyncAPI)
	}
	for _, typ := range index.Types {
		want, err := fs.ReadFile(schemas.FS(), typ.Type+".json")
		if err != nil {
			t.Fatal(err)
		}
		if typ.Schema != srv.URL+"/schemas/"+typ.Type+".json" || typ.ID != reg.SchemaURL(typ.Type) {
			t.Fatalf("index entry %+v", typ)
		}
		resp, body := do("GET", "/schemas/"+typ.Type+".json", nil)
		if resp.StatusCode != 200 || body != string(want) || resp.Header.Get("Content-Type") != "application/schema+json" {
			t.Fatalf("%s: %d %s, %d bytes (want %d)", typ.Type, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(want))
		}
	}
	// The AsyncAPI document and the shared definitions it and the schemas reference.
	if resp, body := do("GET", "/schemas/asyncapi.yaml", nil); resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") || !strings.Contains(body, "asyncapi: 3.0.0") {
		t.Fatalf("asyncapi.yaml: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := do("GET", "/schemas/common.defs.json", nil); resp.StatusCode != 200 {
		t.Fatalf("common.defs.json: %d", resp.StatusCode)
	}
	// Revalidation.
	resp, _ = do("GET", "/schemas/omni.channel.message.received.json", nil)
	etag := resp.Header.Get("ETag")
	if resp, body := do("GET", "/schemas/omni.channel.message.received.json", map[string]string{"If-None-Match": etag}); etag == "" || resp.StatusCode != http.StatusNotModified || body != "" {
		t.Fatalf("If-None-Match %s: %d", etag, resp.StatusCode)
	}
	if resp, body := do("HEAD", "/schemas/omni.channel.message.received.json", nil); resp.StatusCode != 200 || body != "" {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	// Unknown names, other files of the module, traversal.
	for _, path := range []string{"/schemas/omni.no.such.type.json", "/schemas/schemas.go", "/schemas/testdata/omni.channel.call.started/valid/answered.json", "/schemas/..%2fgo.mod", "/schemas/%2e%2e/go.mod"} {
		if resp, body := do("GET", path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d %.80s, want 404", path, resp.StatusCode, body)
		}
	}
}
