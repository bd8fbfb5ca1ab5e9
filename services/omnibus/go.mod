module github.com/omnibus-dev/omnibus/services/omnibus

go 1.26.0

require (
	github.com/omnibus-dev/omnibus/pkg v0.0.0
	github.com/omnibus-dev/omnibus/schemas v0.0.0
)

replace (
	github.com/omnibus-dev/omnibus/pkg => ../../pkg
	github.com/omnibus-dev/omnibus/schemas => ../../schemas
)
