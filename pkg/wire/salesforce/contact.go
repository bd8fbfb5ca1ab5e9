package salesforce

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ContactFields are the standard Contact fields the connector selects (the simulator has them
// all). Custom fields (Member_Number__c, VIP_Level__c) are added from configuration.
var ContactFields = []string{"Id", "Name", "FirstName", "LastName", "Phone", "MobilePhone", "Email", "Title",
	"MailingCity", "Account.Name", "LastModifiedDate"}

// ErrLookupKind is returned by ContactQuery for an identity kind it cannot look up.
var ErrLookupKind = errors.New("salesforce: only phone and email identities can be looked up")

// ContactQuery returns the SOQL that finds the Contacts of one identity, most recently modified
// first:
//
//	phone: SELECT <fields> FROM Contact WHERE Phone IN (<variants>) OR MobilePhone IN (<variants>)
//	       ORDER BY LastModifiedDate DESC LIMIT <limit>
//	email: SELECT <fields> FROM Contact WHERE Email = '<email>' ORDER BY LastModifiedDate DESC LIMIT <limit>
//
// value must be normalised (E.164 phone, lower-case email); phone variants come from
// PhoneVariants. Every literal goes through Quote and every field name must pass ValidFieldName,
// so no value can change the query's structure. Errors: ErrLookupKind, ErrUnquotable, or a
// plain error for a bad field or phone.
func ContactQuery(fields []string, kind, value string, limit int) (string, error) {
	if limit < 1 || limit > 2000 {
		return "", fmt.Errorf("salesforce: limit %d outside 1..2000", limit)
	}
	for _, f := range fields {
		if !ValidFieldName(f) {
			return "", fmt.Errorf("salesforce: %q is not a SOQL field name", f)
		}
	}
	var where string
	switch kind {
	case "phone":
		vs := PhoneVariants(value)
		if vs == nil {
			return "", fmt.Errorf("salesforce: phone is not E.164")
		}
		lits := make([]string, len(vs))
		for i, v := range vs {
			lits[i], _ = Quote(v) // digits, spaces and punctuation only
		}
		list := "(" + strings.Join(lits, ", ") + ")"
		where = "Phone IN " + list + " OR MobilePhone IN " + list
	case "email":
		lit, err := Quote(value)
		if err != nil {
			return "", err
		}
		where = "Email = " + lit
	default:
		return "", fmt.Errorf("%w: %q", ErrLookupKind, kind)
	}
	return "SELECT " + strings.Join(fields, ", ") + " FROM Contact WHERE " + where +
		" ORDER BY LastModifiedDate DESC LIMIT " + strconv.Itoa(limit), nil
}
