// Command unifier runs the unifier on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/unifier"
)

func main() { service.Main(unifier.Service()) }
