//go:build unix

package pgembed

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
)

// reach makes sure that u, the OS user the server runs as, can enter every
// parent directory of dataDir, which must be absolute and whose parent must
// exist. It does nothing when u is nil (the server runs as the current
// user). A directory closed to u is an error, unless grant is set: then u's
// permission class on it (others, or the group when the directory's group is
// u's) gets the search bit, and a warning names the directory.
func (u *osUser) reach(ctx context.Context, logger *slog.Logger, dataDir string, grant bool) error {
	if u == nil {
		return nil
	}
	var parents []string
	for dir := filepath.Dir(dataDir); ; dir = filepath.Dir(dir) {
		parents = append(parents, dir)
		if dir == filepath.Dir(dir) {
			break
		}
	}
	// From the root down, the order in which the server walks them.
	for i := len(parents) - 1; i >= 0; i-- {
		dir := parents[i]
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("pgembed: data directory: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		var bit os.FileMode
		switch {
		case st.Uid == u.uid:
			bit = 0o100
		case st.Gid == u.gid:
			bit = 0o010
		default:
			bit = 0o001
		}
		if fi.Mode().Perm()&bit != 0 {
			continue
		}
		if !grant || bit == 0o100 {
			return fmt.Errorf("pgembed: running as root, so PostgreSQL runs as OS user %q, which cannot enter %s (mode %s, owner uid %d) on the way to the data directory %s: "+
				"make it searchable (chmod o+x %s), or choose a data directory that user can reach", u.name, dir, fi.Mode().Perm(), st.Uid, dataDir, dir)
		}
		if err := os.Chmod(dir, fi.Mode()|bit); err != nil {
			return fmt.Errorf("pgembed: granting OS user %q search permission on %s: %w", u.name, dir, err)
		}
		logger.WarnContext(ctx, "granted the postgres OS user search permission on a parent of the data directory",
			"dir", dir, "mode_before", fi.Mode().Perm(), "mode", (fi.Mode() | bit).Perm(), "data_dir", dataDir)
	}
	return nil
}
