module github.com/omnibus-dev/omnibus/services/omnibus

go 1.26.0

require (
	github.com/omnibus-dev/omnibus/pkg v0.0.0
	github.com/omnibus-dev/omnibus/schemas v0.0.0
)

require (
	github.com/compose-spec/compose-go/v2 v2.16.2 // indirect
	github.com/omnibus-dev/omnibus/services/example v0.0.0
	github.com/omnibus-dev/omnibus/services/unifier v0.0.0
)

replace (
	github.com/omnibus-dev/omnibus/pkg => ../../pkg
	github.com/omnibus-dev/omnibus/schemas => ../../schemas
)

replace github.com/omnibus-dev/omnibus/services/example => ../example

replace github.com/omnibus-dev/omnibus/services/unifier => ../unifier
