// Command desk runs the agent desk on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/desk"
)

func main() { service.Main(desk.Service()) }
