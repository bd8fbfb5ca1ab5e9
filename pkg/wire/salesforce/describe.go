package salesforce

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// DescribePath is the path of an sObject's describe resource of API version v:
// "/services/data/v60.0/sobjects/Contact/describe".
func DescribePath(v, object string) string {
	return DataPrefix + v + "/sobjects/" + object + "/describe"
}

// Describe is the part of an sObject describe response (GET .../sobjects/{object}/describe)
// that omnibus reads; the real one has many more properties, which are ignored. The fields
// listed are those the calling user can see: Salesforce leaves out the fields that field-level
// security hides from them, so a field that is absent is either missing or not readable.
type Describe struct {
	Name         string            `json:"name"`
	Label        string            `json:"label"`
	Custom       bool              `json:"custom"`
	Queryable    bool              `json:"queryable"`
	Retrieveable bool              `json:"retrieveable"`
	Fields       []DescribeField   `json:"fields"`
	URLs         map[string]string `json:"urls,omitempty"`
}

// DescribeField is one field of a describe response.
type DescribeField struct {
	Name             string   `json:"name"`
	Label            string   `json:"label"`
	Type             string   `json:"type"`
	Length           int      `json:"length"`
	Custom           bool     `json:"custom"`
	Nillable         bool     `json:"nillable"`
	Filterable       bool     `json:"filterable"`
	Sortable         bool     `json:"sortable"`
	RelationshipName *string  `json:"relationshipName"`
	ReferenceTo      []string `json:"referenceTo"`
}

// ParseDescribe decodes a describe response body; it needs a name and a fields array. Errors
// wrap ErrMalformedBody.
func ParseDescribe(body []byte) (*Describe, error) {
	if len(body) > maxBody {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformedBody, len(body))
	}
	var d Describe
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedBody, err)
	}
	if d.Name == "" || d.Fields == nil {
		return nil, fmt.Errorf("%w: a describe needs name and fields", ErrMalformedBody)
	}
	return &d, nil
}

// Has reports whether the described object has field (an API name, compared without case as
// Salesforce does) readable by the caller. A relationship path such as Account.Name is checked
// by its relationship: a field whose relationshipName is Account.
func (d *Describe) Has(field string) bool {
	rel, _, isPath := strings.Cut(field, ".")
	for _, f := range d.Fields {
		if isPath {
			if f.RelationshipName != nil && strings.EqualFold(*f.RelationshipName, rel) {
				return true
			}
			continue
		}
		if strings.EqualFold(f.Name, field) {
			return true
		}
	}
	return false
}

// Missing returns the fields of want that d does not have (Has), in want's order.
func (d *Describe) Missing(want ...string) []string {
	var out []string
	for _, f := range want {
		if !d.Has(f) {
			out = append(out, f)
		}
	}
	return out
}

// FieldNames returns the API names of d's fields.
func (d *Describe) FieldNames() []string {
	out := make([]string, len(d.Fields))
	for i, f := range d.Fields {
		out[i] = f.Name
	}
	return out
}
