package iflytek_test

import (
	"testing"

	"github.com/omnibus-dev/omnibus/pkg/wire/iflytek"
)

// TestSigna is the vector of the RTASR documentation (vendors part 2, A.1).
func TestSigna(t *testing.T) {
	t.Parallel()
	if got := iflytek.Signa("595f23df", "1512041814", "d9f4aa7ea6d94faca62cd88a28fd5234"); got != "IrrzsJeOFk1NGfJHW6SkHUoN9CU=" {
		t.Fatalf("signa = %s", got)
	}
}
