// Package pgtest gives every test its own PostgreSQL database.
//
// Tests call [NewDB] for a connection pool, or [NewDBURL] for a connection
// URL, to a new database that is dropped when the test ends:
//
//	func TestStore(t *testing.T) {
//		t.Parallel()
//		pool := pgtest.NewDB(t, pgtest.WithMigrations("store", store.Migrate))
//		...
//	}
//
// # The cluster
//
// All tests of a test binary (one package) share one PostgreSQL server,
// started on first use with package pgembed from the PostgreSQL binaries
// installed on the machine, with durability turned off for speed. When the
// environment variable TEST_DATABASE_URL is set, the server it points to is
// used instead; its role needs the CREATEDB privilege (or to be a
// superuser). pgtest needs PostgreSQL 13 or later.
//
// When PostgreSQL is not installed, tests that need a database are skipped
// with a message saying what to install, except when the environment
// variable CI is true, where they fail.
//
// Call [WrapMain] from TestMain to stop the server once the tests are done:
//
//	func TestMain(m *testing.M) { pgtest.WrapMain(m) }
//
// or, to combine it with other checks such as goleak, [Wrap]:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(pgtest.Wrap(m)) }
//
// A test binary that calls neither leaves its server running until the
// binary exits, when the kernel kills it (see package pgembed), and leaves
// its temporary data directory behind in os.TempDir().
//
// # Migrations and templates
//
// [WithMigrations] names a migration set. The first test that uses a name
// creates a template database, tmpl_<name>, and runs the migrations on it,
// once, even when tests run in parallel. Every test then gets a copy of the
// template, made with CREATE DATABASE ... TEMPLATE, which takes milliseconds
// instead of a full migration run. Without WithMigrations, a test gets an
// empty database.
//
// Databases are named test_<random>. The template databases of an external
// server (TEST_DATABASE_URL) get a random suffix, since test binaries of
// several packages may share that server at once, and are dropped by
// WrapMain.
package pgtest
