// Command oms runs the OMS connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/oms"
)

func main() { service.Main(oms.Service()) }
