// Package browsertest runs headless Chromium for the end-to-end tests of omnibus's web pages
// (the desk, the web chat widget, the all-in-one): one way to find the browser, start it, and
// keep screenshots where CI collects them.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium returns the Chromium (or Chrome) binary: $CHROMIUM, else the first one on the machine,
// else "".
func Chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is a started headless Chromium.
type Browser struct {
	// Ctx is the browser's context: chromedp actions run on it (or on a child bounded by a
	// timeout; the browser stays up when that child ends). It ends with the test.
	Ctx context.Context
	// Shots is the directory screenshots go to: $OMNIBUS_ARTIFACTS/<name>, else
	// <repository>/artifacts/<name>.
	Shots string
}

// Start starts Chromium for test t (what names it in the messages) with a 1280×800 window and
// zh-CN as its language. Without Chromium the test is skipped — or fails when $CI is set, since
// CI installs it. Screenshots go under artifacts/<name>, whose failed.png of an earlier run is
// removed.
func Start(t *testing.T, what, name string) *Browser {
	t.Helper()
	bin := Chromium()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("Chromium is required in CI for %s: apt-get install -y chromium", what)
		}
		t.Skipf("Chromium is not installed (apt-get install -y chromium, or set CHROMIUM): skipping %s", what)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("lang", "zh-CN"),
		chromedp.WindowSize(1280, 800), chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelBrowser)
	// Start it on bctx: the context of the first run owns the browser, so screenshots still work
	// after a bounded child context ran out.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	return &Browser{Ctx: bctx, Shots: artifacts(t, name)}
}

// Shot saves a screenshot of the page as <Shots>/<name>.png; a failure to take it is logged.
func (b *Browser) Shot(t *testing.T, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.Shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	t.Logf("screenshot %s", p)
}

// artifacts returns $OMNIBUS_ARTIFACTS/<name>, else <repository>/artifacts/<name> (the directory
// holding go.work, above the test's package), created, without an earlier run's failed.png.
func artifacts(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("OMNIBUS_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "artifacts")
	}
	dir, err := filepath.Abs(filepath.Join(dir, name))
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(dir, "failed.png"))
	return dir
}

// repoRoot is the nearest directory above the working directory holding go.work, else the
// working directory.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}
