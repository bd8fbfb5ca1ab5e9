package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// TestSelect: an optional service none of whose enabling variables is set is left out and
// listed as disabled with those variables; a configured one and a core one run; /readyz lists
// the disabled ones and stays ready.
func TestSelect(t *testing.T) {
	t.Parallel()
	run := func(context.Context, service.Deps) error { return nil }
	optional := func(name string, vars ...string) service.Service {
		return service.Service{Name: name, Run: run, Configured: func(env config.Lookup) (bool, []string) {
			for _, v := range vars {
				if _, ok := env(v); ok {
					return true, vars
				}
			}
			return false, vars
		}}
	}
	svcs := []service.Service{
		{Name: "core", Run: run},
		optional("sms", "SMS_PROVIDER"),
		optional("crm", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"),
	}
	env := func(k string) (string, bool) { return "aliyun", k == "SMS_PROVIDER" }
	runs, disabled := service.Select(svcs, env)
	var names []string
	for _, s := range runs {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"core", "sms"}) {
		t.Fatalf("run %v, want core and sms", names)
	}
	if len(disabled) != 1 || disabled[0].Name != "crm" || !slices.Equal(disabled[0].Enable, []string{"SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"}) ||
		!strings.Contains(disabled[0].Reason, "SALESFORCE_CLIENT_ID or SALESFORCE_CLIENT_SECRET") {
		t.Fatalf("disabled %+v, want crm with its two variables", disabled)
	}

	h := service.NewHealth()
	h.SetDisabled(disabled)
	mux := http.NewServeMux()
	h.Mount(mux, nil)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	var body struct {
		Ready    bool               `json:"ready"`
		Disabled []service.Disabled `json:"disabled"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || !body.Ready || len(body.Disabled) != 1 || body.Disabled[0].Name != "crm" {
		t.Fatalf("/readyz: %d %s; want ready with crm disabled", rec.Code, rec.Body)
	}
}
