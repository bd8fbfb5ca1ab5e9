package store

import (
	"io/fs"

	"github.com/pressly/goose/v3/lock"
)

func fsSub() (fs.FS, error) { return fs.Sub(migrations, "migrations") }

func mustLocker() lock.SessionLocker {
	l, err := lock.NewPostgresSessionLocker()
	if err != nil {
		panic(err)
	}
	return l
}
