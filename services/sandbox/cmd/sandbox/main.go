// Command sandbox runs the vendor simulators on their own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/sandbox"
)

func main() { service.Main(sandbox.Service()) }
