package pgtest_test

import (
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/omnibus-dev/omnibus/pkg/pgtest"
)

// wrapMainEnv makes TestMain use WrapMain; see TestWrapMainStopsCluster.
const wrapMainEnv = "PGTEST_TEST_WRAPMAIN"

// TestMain checks that, once the cluster is shut down, pgtest, pgx and the
// tests leave no goroutine behind: pgtest.Wrap(m).Run runs the tests and
// then shuts the cluster down, and goleak checks after that. Packages that
// need no extra check call pgtest.WrapMain(m) instead.
func TestMain(m *testing.M) {
	if os.Getenv(wrapMainEnv) != "" {
		pgtest.WrapMain(m)
	}
	goleak.VerifyTestMain(pgtest.Wrap(m))
}

// TestWrapMainStopsCluster runs a test in a child test binary whose
// TestMain calls WrapMain, and checks that the child's cluster is gone and
// its temporary directory removed when the child has exited.
func TestWrapMainStopsCluster(t *testing.T) {
	if os.Getenv(wrapMainEnv) != "" {
		t.Skip("already in the child")
	}
	if os.Getenv(pgtest.EnvDatabaseURL) != "" {
		t.Skip("the child would use " + pgtest.EnvDatabaseURL)
	}
	t.Parallel()
	// The child's TMPDIR; when running as root the server runs as the
	// postgres user, which must be able to enter it.
	tmp, err := os.MkdirTemp("", "pgtest-wrapmain-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}

	child := exec.Command(os.Args[0], "-test.run=^TestIsolation$", "-test.v")
	child.Env = append(os.Environ(), wrapMainEnv+"=1", "TMPDIR="+tmp)
	out, err := child.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP: TestIsolation") {
		t.Skipf("child skipped:\n%s", out)
	}
	port := regexp.MustCompile(`PostgreSQL on port (\d+) ready`).FindSubmatch(out)
	if port == nil {
		t.Fatalf("child did not start a cluster:\n%s", out)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("child left %v in its TMPDIR", entries)
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+string(port[1]), time.Second); err == nil {
		conn.Close()
		t.Errorf("the child's server on port %s still accepts connections", port[1])
	}
}
