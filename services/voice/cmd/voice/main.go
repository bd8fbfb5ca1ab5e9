// Command voice runs the voice connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/voice"
)

func main() { service.Main(voice.Service()) }
