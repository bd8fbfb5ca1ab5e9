package pgembed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned, wrapped, by [Start] when the PostgreSQL server
// programs cannot be found.
var ErrNoBinaries = errors.New("PostgreSQL server binaries (initdb, postgres) not found; install them, e.g. with `apt-get install -y postgresql`")

// versionsRoot is where Debian and Ubuntu install one directory per major
// version of PostgreSQL.
const versionsRoot = "/usr/lib/postgresql"

// binaries holds the paths of the programs Start runs. Both come from the
// same directory, so they belong to the same PostgreSQL version.
type binaries struct {
	initdb   string
	postgres string
}

// findBinaries looks for a directory holding both initdb and postgres: first
// the directories on PATH, in order, then versionsRoot/*/bin, newest version
// first.
func findBinaries() (binaries, error) {
	return findBinariesIn(filepath.SplitList(os.Getenv("PATH")), versionsRoot)
}

func findBinariesIn(pathDirs []string, root string) (binaries, error) {
	dirs := slices.Clone(pathDirs)
	dirs = append(dirs, versionDirs(root)...)
	for _, dir := range dirs {
		if dir == "" {
			// An empty PATH element means the current directory; never run
			// a database server from there.
			continue
		}
		b := binaries{
			initdb:   filepath.Join(dir, "initdb"),
			postgres: filepath.Join(dir, "postgres"),
		}
		if isExecutable(b.initdb) && isExecutable(b.postgres) {
			return b, nil
		}
	}
	return binaries{}, fmt.Errorf("pgembed: %w (searched PATH and %s)", ErrNoBinaries, filepath.Join(root, "*", "bin"))
}

// versionDirs returns root/<version>/bin for every version directory under
// root, newest version first.
func versionDirs(root string) []string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	type versionDir struct {
		version []int
		dir     string
	}
	var found []versionDir
	for _, e := range entries {
		v, ok := parseVersion(e.Name())
		if !ok {
			continue
		}
		found = append(found, versionDir{version: v, dir: filepath.Join(root, e.Name(), "bin")})
	}
	slices.SortStableFunc(found, func(a, b versionDir) int {
		return -slices.Compare(a.version, b.version)
	})
	dirs := make([]string, len(found))
	for i, f := range found {
		dirs[i] = f.dir
	}
	return dirs
}

// parseVersion parses a dotted version such as "15" or "9.6".
func parseVersion(s string) ([]int, bool) {
	var v []int
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		v = append(v, n)
	}
	return v, true
}

// isExecutable reports whether path, after following symbolic links, is a
// regular file with an execute bit set.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
