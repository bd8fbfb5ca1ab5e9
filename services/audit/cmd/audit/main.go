// Command audit runs the audit sink on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/audit"
)

func main() { service.Main(audit.Service()) }
