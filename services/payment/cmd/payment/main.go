// Command payment runs the payment connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/payment"
)

func main() { service.Main(payment.Service()) }
