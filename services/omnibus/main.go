// Command omnibus runs the whole system in one process on embedded defaults, and holds the
// operator subcommands:
//
//	omnibus                 run everything (embedded NATS, throwaway Postgres, demo)
//	omnibus dlq list|redrive  inspect and redrive dead letters
//	omnibus config          print every environment variable with its default
//	omnibus health          exit 0 if the running all-in-one answers /healthz
package main

import (
	"os"

	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/example"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/unifier"
)

// services is every service the all-in-one composes; a new service adds one line here.
func services() []service.Service {
	return []service.Service{
		example.Service(),
		unifier.Service(),
	}
}

// simulated returns what the all-in-one adds when OMNIBUS_SIMULATE is on: the vendor sandbox
// (the vendors and the customers).
func simulated() []service.Service {
	return []service.Service{sandbox.Service()}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
