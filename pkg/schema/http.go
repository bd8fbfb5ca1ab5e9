package schema

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/omnibus-dev/omnibus/schemas"
)

// Path is where [Handler] is mounted on a service's mux: the schema of type T is served at
// <service URL>/schemas/T.json, which is what a bus publishing with
// bus.WithDataSchemaBase(<service URL>+Path) puts in the events' dataschema.
const Path = "/schemas/"

// Handler serves the embedded schema files read-only under [Path]:
//
//	GET /schemas/                 an index: every type with its schema's URL, and the AsyncAPI document
//	GET /schemas/<type>.json      the schema (application/schema+json), its $id unchanged
//	GET /schemas/<x>.defs.json    shared definitions the type schemas reference
//	GET /schemas/asyncapi.yaml    the AsyncAPI 3 document (its ./<type>.json references resolve here)
//
// Responses carry the registry's fingerprint as a strong ETag, so a client that caches a schema
// revalidates it with one If-None-Match round trip; a schema changes only with a new release.
func (r *Registry) Handler() http.Handler {
	files := schemas.FS()
	etag := `"` + r.fingerprint + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: the schemas are read-only", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(req.URL.Path, Path)
		if name == req.URL.Path || strings.Contains(name, "/") || (name != "" && !fs.ValidPath(name)) {
			http.Error(w, "not found: schemas are served as "+Path+"<type>.json", http.StatusNotFound)
			return
		}
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Access-Control-Allow-Origin", "*") // public documents: browser tools (Ajv, AsyncAPI Studio) may fetch them
		if match := req.Header.Get("If-None-Match"); match != "" && (match == etag || match == "*") {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if name == "" {
			r.serveIndex(w, req)
			return
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			http.Error(w, "not found: no schema "+name+" (GET "+Path+" lists them)", http.StatusNotFound)
			return
		}
		switch path.Ext(name) {
		case ".json":
			w.Header().Set("Content-Type", "application/schema+json")
		case ".yaml":
			w.Header().Set("Content-Type", "application/yaml")
		}
		_, _ = w.Write(b)
	})
}

// serveIndex lists every type with the URL its schema is served at on this request's host, and
// the canonical $id the schema declares.
func (r *Registry) serveIndex(w http.ResponseWriter, req *http.Request) {
	scheme := "http"
	if req.TLS != nil {
		scheme = "https"
	}
	here := scheme + "://" + req.Host + Path
	type typ struct {
		Type   string `json:"type"`
		Schema string `json:"schema"`
		ID     string `json:"$id"`
	}
	out := struct {
		Fingerprint string `json:"fingerprint"`
		AsyncAPI    string `json:"asyncapi"`
		Types       []typ  `json:"types"`
	}{Fingerprint: r.fingerprint, AsyncAPI: here + "asyncapi.yaml", Types: make([]typ, 0, len(r.names))}
	for _, t := range r.names {
		out.Types = append(out.Types, typ{Type: t, Schema: here + t + ".json", ID: r.types[t].url})
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(out)
}
