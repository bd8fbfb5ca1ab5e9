// Command webchat runs the web chat connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/webchat"
)

func main() { service.Main(webchat.Service()) }
