// Command kuaishou runs the Kuaishou open-platform connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/kuaishou"
)

func main() { service.Main(kuaishou.Service()) }
