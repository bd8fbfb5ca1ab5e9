// Command example runs the example connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/example"
)

func main() { service.Main(example.Service()) }
