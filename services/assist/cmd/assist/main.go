// Command assist runs the AI assist connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/assist"
)

func main() { service.Main(assist.Service()) }
