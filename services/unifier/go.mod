module github.com/omnibus-dev/omnibus/services/unifier

go 1.26.0

require (
	github.com/omnibus-dev/omnibus/pkg v0.0.0
	github.com/omnibus-dev/omnibus/schemas v0.0.0
)

require (
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/pgx/v5 v5.12.0 // indirect
	github.com/mfridman/interpolate v0.0.2 // indirect
	github.com/pressly/goose/v3 v3.30.0 // indirect
	github.com/sethvargo/go-retry v0.5.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	go.uber.org/multierr v1.11.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/text v0.44.0 // indirect
)

replace (
	github.com/omnibus-dev/omnibus/pkg => ../../pkg
	github.com/omnibus-dev/omnibus/schemas => ../../schemas
)
