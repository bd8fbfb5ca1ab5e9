// Command wechatkf runs the WeChat Customer Service connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/wechatkf"
)

func main() { service.Main(wechatkf.Service()) }
