// Command logistics runs the logistics connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/logistics"
)

func main() { service.Main(logistics.Service()) }
