module github.com/omnibus-dev/omnibus/schemas

go 1.26.0
