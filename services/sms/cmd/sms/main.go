// Command sms runs the SMS connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/sms"
)

func main() { service.Main(sms.Service()) }
