package payment

import (
	"github.com/omnibus-dev/omnibus/pkg/connector"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// ServiceWith is Service with o (a test clock).
func ServiceWith(o Options) service.Service { return connector.Define(Spec, setupWith(o)) }
