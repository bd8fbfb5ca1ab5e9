// Command ticket runs the ticket connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/ticket"
)

func main() { service.Main(ticket.Service()) }
