package salesforce_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	sfwire "github.com/omnibus-dev/omnibus/pkg/wire/salesforce"
	"github.com/omnibus-dev/omnibus/services/sandbox/salesforce"
)

// TestDescribe: the Contact describe lists every field the simulator serves, in the real
// response's shape, and an org with hidden fields leaves them out of it and refuses queries of
// them with INVALID_FIELD.
func TestDescribe(t *testing.T) {
	t.Parallel()
	describe := func(t *testing.T, b *bundle, tok, version, object string) (int, []byte) {
		t.Helper()
		return b.get(t, tok, sfwire.DescribePath(version, object))
	}
	t.Run("every field", func(t *testing.T) {
		t.Parallel()
		b := setup(t, salesforce.Config{Customers: 3, Seed: 1, SessionTTL: time.Hour})
		_, tok := b.token(t, creds())
		status, body := describe(t, b, tok["access_token"], "v60.0", "Contact")
		if status != http.StatusOK {
			t.Fatalf("describe: %d %s", status, body)
		}
		d, err := sfwire.ParseDescribe(body)
		if err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(sfwire.ContactFields), "Member_Number__c", "VIP_Level__c")
		if m := d.Missing(want...); d.Name != "Contact" || !d.Queryable || len(m) != 0 {
			t.Fatalf("describe %s (queryable %v) misses %v", d.Name, d.Queryable, m)
		}
		for _, f := range d.Fields {
			if f.Custom != (f.Name == "Member_Number__c" || f.Name == "VIP_Level__c") {
				t.Errorf("field %s: custom %v", f.Name, f.Custom)
			}
		}
		if status, body := describe(t, b, "", "v60.0", "Contact"); status != http.StatusUnauthorized ||
			sfwire.ParseErrors(status, body).Code != sfwire.CodeInvalidSession {
			t.Fatalf("describe without a token: %d %s", status, body)
		}
		if status, _ := describe(t, b, tok["access_token"], "v60.0", "Opportunity"); status != http.StatusNotFound {
			t.Fatalf("describe of another object: %d, want 404", status)
		}
	})
	t.Run("hidden fields", func(t *testing.T) {
		t.Parallel()
		b := setup(t, salesforce.Config{Customers: 3, Seed: 1, SessionTTL: time.Hour, HiddenFields: []string{"VIP_Level__c"}})
		_, tok := b.token(t, creds())
		_, body := describe(t, b, tok["access_token"], "v60.0", "Contact")
		d, err := sfwire.ParseDescribe(body)
		if err != nil {
			t.Fatal(err)
		}
		if m := d.Missing("Member_Number__c", "VIP_Level__c", "Account.Name"); !slices.Equal(m, []string{"VIP_Level__c"}) {
			t.Fatalf("missing %v, want only VIP_Level__c", m)
		}
		status, qbody := b.query(t, tok["access_token"], "v60.0", "SELECT Id, VIP_Level__c FROM Contact")
		if status != http.StatusBadRequest || sfwire.ParseErrors(status, qbody).Code != sfwire.CodeInvalidField {
			t.Fatalf("query of a hidden field: %d %s, want 400 INVALID_FIELD", status, qbody)
		}
	})
}
