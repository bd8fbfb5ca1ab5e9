package pii_test

import (
	"bytes"
	"io/fs"
	"path"
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/schema"
	"github.com/omnibus-dev/omnibus/schemas"
)

// TestSealedExamplesValidate seals every valid example event of schemas/testdata: the sealed
// data must still validate (consumers without the keyset validate the sealed form), and opening
// it must give back what was sealed.
func TestSealedExamplesValidate(t *testing.T) {
	t.Parallel()
	x := pii.NewEvents(newKeys(t))
	reg := schema.Default()
	ex := schemas.Examples()
	files, err := fs.Glob(ex, "testdata/*/valid/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v", err)
	}
	sealedAny := 0
	for _, f := range files {
		typ := path.Base(path.Dir(path.Dir(f)))
		data, _ := fs.ReadFile(ex, f)
		sealed, err := x.Seal(data)
		if err != nil {
			t.Errorf("%s: seal: %v", f, err)
			continue
		}
		if bytes.Equal(sealed, data) {
			continue
		}
		sealedAny++
		if err := reg.Validate(typ, sealed); err != nil {
			t.Errorf("%s: the sealed form does not validate: %v\n%s", f, err, sealed)
		}
		opened, err := x.Open(sealed)
		if err != nil {
			t.Errorf("%s: open: %v", f, err)
			continue
		}
		if err := reg.Validate(typ, opened); err != nil {
			t.Errorf("%s: opened: %v", f, err)
		}
	}
	if sealedAny < 5 {
		t.Fatalf("only %d examples hold a sealed kind", sealedAny)
	}
}
