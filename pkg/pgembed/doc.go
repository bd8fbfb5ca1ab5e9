// Package pgembed runs a throwaway PostgreSQL server from the PostgreSQL
// binaries installed on the machine.
//
// It is used by the all-in-one omnibus binary, which needs a database without
// any external setup, and by package pgtest, which gives every test its own
// database. pgembed does not download or bundle PostgreSQL: it looks for
// initdb and postgres on PATH and under /usr/lib/postgresql/*/bin (newest
// version first) and returns an error wrapping [ErrNoBinaries] when they are
// missing. On Debian and Ubuntu, install them with
//
//	apt-get install -y postgresql
//
// # The server
//
// [Start] initialises a data directory with initdb (unless it already holds a
// cluster) and runs postgres as a direct child process:
//
//   - it listens on TCP 127.0.0.1 only, on a free port unless one is
//     requested; the Unix socket lives in the temporary directory, if pgembed
//     created one, and is disabled otherwise;
//   - connections from this machine use trust authentication and the
//     superuser is named postgres, so [Server.URL] needs no password; note
//     that any local user or process can therefore connect as superuser;
//   - server settings can be added or overridden with [Options.Settings]
//     (for example fsync=off for tests); durability settings keep the
//     PostgreSQL defaults otherwise.
//
// When [Options.DataDir] is empty, the cluster lives in a fresh temporary
// directory that [Server.Stop] removes. Otherwise the directory is initialised
// on first use and kept, so data survives restarts. A marker file beside the
// directory says while initdb runs, so that the half-made cluster of a process
// killed during initdb is made again by the next Start rather than started.
//
// # Running as root
//
// PostgreSQL refuses to run as root. When the current process runs as root,
// pgembed runs initdb and postgres as the OS user named postgres (created by
// the Debian/Ubuntu packages) and hands the directories it creates to that
// user. Every parent directory of a custom DataDir must therefore be
// searchable by that user: [Start] fails naming the first one that is not,
// or, with [Options.GrantParentSearch], makes it searchable and says so.
//
// # Process lifetime
//
// The server is started in its own process group, so a Ctrl-C in the
// terminal reaches only the parent, which can then stop the server in order.
// On Linux the server also gets SIGKILL from the kernel when its parent dies
// (PR_SET_PDEATHSIG), so a crashed or killed parent never leaves a server
// behind. The kernel ties that signal to the OS thread that started the
// process; the Go runtime does not end its threads, except ones locked with
// runtime.LockOSThread whose goroutine exits, so do not call Start from such
// a goroutine. A data directory in a temporary directory is only removed by
// [Server.Stop]; after a crash it stays behind in os.TempDir().
//
// A server killed that way leaves its postmaster.pid in a kept DataDir, and
// PostgreSQL will not start while the PID recorded there is alive — as the
// dead postmaster is, as a zombie, where nothing reaps orphans (PID 1 of
// many containers), or an unrelated process may be after PID reuse. On
// Linux, [Start] therefore checks the recorded process: if it is a live
// process working in the data directory, the server still runs and Start
// returns an error wrapping [ErrDataDirInUse]; otherwise Start waits for
// the dead server's backends to exit and removes the stale file.
package pgembed
