// Command crm runs the CRM connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/crm"
)

func main() { service.Main(crm.Service()) }
