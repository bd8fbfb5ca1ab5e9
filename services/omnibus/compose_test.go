package main_test

// These tests keep docker-compose.yml, docker-compose.cluster.yml and the Dockerfile in step with
// the services on disk. They load the compose files with compose-go, the library behind
// `docker compose config`, so they need no Docker:
//
//	go test -run Compose ./services/omnibus/     (or: task compose:config)

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeRoot is the repository root (go.work, the Dockerfile, the compose files), relative to
// this module's directory.
const composeRoot = "../.."

// composeProjects are the stacks the repository ships, each as the files given to
// `docker compose -f ...`, in order.
var composeProjects = map[string][]string{
	"single":  {"docker-compose.yml"},
	"cluster": {"docker-compose.yml", "docker-compose.cluster.yml"},
}

// The conventions every Go service follows (Dockerfile, pkg/service).
const (
	composeDockerfile  = "Dockerfile"
	composeServiceArg  = "SERVICE"
	composeHTTPPort    = 8080
	composeComposer    = "omnibus" // the all-in-one: every service in one process, no compose entry
	composeNATSService = "nats"
)

// composeHealthTest is the healthcheck of every Go service: the binary's own `health`
// subcommand, since distroless has no shell.
var composeHealthTest = []string{"CMD", "/service", "health"}

func composeRootDir(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(composeRoot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

// loadComposeProject loads files the way `docker compose -f a -f b config` does: schema
// validation, interpolation, merging, normalisation and the consistency checks (undefined
// services, volumes, networks), with every profile enabled. The environment is empty rather than
// the test process's, so the result does not depend on who runs the test: every ${VAR} in the
// files needs a default.
func loadComposeProject(t *testing.T, files []string) *types.Project {
	t.Helper()
	root := composeRootDir(t)
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(root, f)
	}
	opts, err := cli.NewProjectOptions(paths,
		cli.WithWorkingDirectory(root),
		cli.WithProfiles([]string{"*"}),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatalf("compose options for %v: %v", files, err)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker compose -f %s config: %v", strings.Join(files, " -f "), err)
	}
	if len(project.Services) == 0 {
		t.Fatalf("%v: no services", files)
	}
	return project
}

// forEachComposeProject runs fn, in parallel subtests, on every stack in composeProjects.
func forEachComposeProject(t *testing.T, fn func(t *testing.T, root string, p *types.Project)) {
	t.Helper()
	for name, files := range composeProjects {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, composeRootDir(t), loadComposeProject(t, files))
		})
	}
}

// serviceArg returns the SERVICE build arg of a compose service.
func serviceArg(svc types.ServiceConfig) (string, bool) {
	if svc.Build == nil {
		return "", false
	}
	v, ok := svc.Build.Args[composeServiceArg]
	if !ok || v == nil {
		return "", false
	}
	return *v, true
}

// cmdDirs lists the directories services/<name>/cmd/<cmd> on disk, as slash-separated paths
// relative to root.
func cmdDirs(t *testing.T, root string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(root, "services", "*", "cmd", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.IsDir() {
			rel, err := filepath.Rel(root, m)
			if err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, filepath.ToSlash(rel))
		}
	}
	return dirs
}

// hasGoFiles reports whether dir holds a non-test Go file.
func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return slices.ContainsFunc(m, func(f string) bool { return !strings.HasSuffix(f, "_test.go") })
}

func TestComposeFilesLoad(t *testing.T) {
	t.Parallel()
	forEachComposeProject(t, func(t *testing.T, _ string, p *types.Project) {
		if p.Name != "omnibus" {
			t.Errorf("project name = %q, want omnibus (`name:` in every file, so they form one project)", p.Name)
		}
		for _, name := range []string{composeNATSService, "postgres"} {
			if _, ok := p.Services[name]; !ok {
				t.Errorf("no %q service", name)
			}
		}
	})
}

// TestComposeGoServices checks every service built from the Dockerfile: its SERVICE arg names a
// services/<name>/cmd/<name> that exists, and the container is wired the way the binaries expect.
func TestComposeGoServices(t *testing.T) {
	t.Parallel()
	forEachComposeProject(t, func(t *testing.T, root string, p *types.Project) {
		built := map[string]string{} // SERVICE arg -> compose service
		for _, name := range slices.Sorted(maps.Keys(p.Services)) {
			svc := p.Services[name]
			if svc.Build == nil {
				continue
			}
			if svc.Build.Context != root {
				t.Errorf("%s: build context %q, want the repository root %q", name, svc.Build.Context, root)
			}
			if df := svc.Build.Dockerfile; df != composeDockerfile && df != filepath.Join(root, composeDockerfile) {
				t.Errorf("%s: dockerfile %q, want the shared %s", name, df, composeDockerfile)
			}
			if svc.Build.DockerfileInline != "" {
				t.Errorf("%s: dockerfile_inline; build from the shared %s", name, composeDockerfile)
			}
			arg, ok := serviceArg(svc)
			if !ok || arg == "" {
				t.Errorf("%s: no build arg %s (the folder under services/ to build)", name, composeServiceArg)
				continue
			}
			cmd := filepath.Join(root, "services", arg, "cmd", arg)
			if fi, err := os.Stat(cmd); err != nil || !fi.IsDir() {
				t.Errorf("%s: %s=%s, but there is no services/%s/cmd/%s to build", name, composeServiceArg, arg, arg, arg)
			} else if !hasGoFiles(cmd) {
				t.Errorf("%s: services/%s/cmd/%s has no Go files", name, arg, arg)
			}
			if other, dup := built[arg]; dup {
				t.Errorf("%s and %s both build %s=%s (a copied entry?); run more copies with deploy.replicas",
					other, name, composeServiceArg, arg)
			}
			built[arg] = name

			checkGoService(t, name, svc, !busless[arg])
		}
		if len(built) == 0 {
			t.Error("no service is built from the Dockerfile")
		}
	})
}

// busless names the services that never touch NATS (service.Service.NoBus: the vendor sandbox):
// they need no NATS_URL and need not wait for it.
var busless = map[string]bool{"sandbox": true}

func checkGoService(t *testing.T, name string, svc types.ServiceConfig, needsBus bool) {
	t.Helper()
	switch hc := svc.HealthCheck; {
	case hc == nil || hc.Disable:
		t.Errorf("%s: no healthcheck; use test: %q", name, composeHealthTest)
	case !slices.Equal(hc.Test, composeHealthTest):
		t.Errorf("%s: healthcheck test %q, want %q (distroless has no shell)", name, hc.Test, composeHealthTest)
	}

	if dep, ok := svc.DependsOn[composeNATSService]; !ok {
		if needsBus {
			t.Errorf("%s: does not depend on %s", name, composeNATSService)
		}
	} else if dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("%s: depends on %s with condition %q, want %s",
			name, composeNATSService, dep.Condition, types.ServiceConditionHealthy)
	}

	env := func(k string) string {
		if v := svc.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	if env("NATS_URL") == "" && needsBus {
		t.Errorf("%s: no NATS_URL", name)
	}
	// The server must listen on all interfaces (ports are published) and on the port that
	// `/service health` asks.
	if addr := env("HTTP_ADDR"); addr != fmt.Sprintf("0.0.0.0:%d", composeHTTPPort) {
		t.Errorf("%s: HTTP_ADDR=%q, want 0.0.0.0:%d", name, addr, composeHTTPPort)
	}
	if env("DATABASE_URL") != "" {
		if dep, ok := svc.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: sets DATABASE_URL but does not wait for a healthy postgres", name)
		}
	}
	for _, port := range svc.Ports {
		// UDP ports are a service's own media/signalling listeners (voice: SIP and RTP).
		if port.Target != composeHTTPPort && port.Protocol != "udp" {
			t.Errorf("%s: publishes container port %d; the service listens on %d", name, port.Target, composeHTTPPort)
		}
	}
}

// TestComposeCoversEveryService fails when a service has a main but no compose entry, so a new
// service cannot be left out of the stack.
func TestComposeCoversEveryService(t *testing.T) {
	t.Parallel()
	forEachComposeProject(t, func(t *testing.T, root string, p *types.Project) {
		have := map[string]bool{}
		for _, svc := range p.Services {
			if arg, ok := serviceArg(svc); ok {
				have[arg] = true
			}
		}
		for _, dir := range cmdDirs(t, root) {
			parts := strings.Split(dir, "/") // services/<name>/cmd/<cmd>
			name, cmd := parts[1], parts[3]
			if name == composeComposer {
				continue
			}
			if cmd != name {
				t.Errorf("%s: the Dockerfile builds services/<name>/cmd/<name>; name the command %q", dir, name)
				continue
			}
			if !have[name] {
				t.Errorf("%s has no entry in docker-compose.yml; add one (see the comment at its top):\n\n"+
					"  %s:\n    <<: *service\n    build: { <<: *build, args: { %s: %s } }\n    ports: [\"<free host port>:%d\"]\n",
					dir, name, composeServiceArg, name, composeHTTPPort)
			}
		}
	})
}

// TestComposeInfrastructure checks NATS and Postgres: a named volume for the data of each server
// (never shared), a healthcheck, and config files that exist.
func TestComposeInfrastructure(t *testing.T) {
	t.Parallel()
	forEachComposeProject(t, func(t *testing.T, _ string, p *types.Project) {
		volumeOwner := map[string]string{} // named volume -> service
		for _, name := range slices.Sorted(maps.Keys(p.Services)) {
			svc := p.Services[name]
			for _, v := range svc.Volumes {
				switch v.Type {
				case types.VolumeTypeVolume:
					if other, ok := volumeOwner[v.Source]; ok && other != name {
						t.Errorf("volume %s is mounted by both %s and %s", v.Source, other, name)
					}
					volumeOwner[v.Source] = name
				case types.VolumeTypeBind:
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("%s: bind mount source: %v", name, err)
					}
				}
			}
			checkConfigFlag(t, name, svc)

			var dataDir string
			switch image := svc.Image; {
			case strings.HasPrefix(image, "nats:"):
				dataDir = "/data"
			case strings.HasPrefix(image, "postgres:"):
				dataDir = "/var/lib/postgresql/data"
			default:
				continue
			}
			if !slices.ContainsFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool {
				return v.Type == types.VolumeTypeVolume && v.Target == dataDir
			}) {
				t.Errorf("%s: no named volume at %s; its data would die with the container", name, dataDir)
			}
			if hc := svc.HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
				t.Errorf("%s: no healthcheck; the services wait for it to be healthy", name)
			}
		}
	})
}

// checkConfigFlag checks that a `--config <path>` in a service's command lies in a bind mount and
// that the file exists on the host side.
func checkConfigFlag(t *testing.T, name string, svc types.ServiceConfig) {
	t.Helper()
	i := slices.Index(svc.Command, "--config")
	if i < 0 {
		return
	}
	if i+1 >= len(svc.Command) {
		t.Errorf("%s: --config without a path", name)
		return
	}
	path := svc.Command[i+1]
	for _, v := range svc.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		rel, err := filepath.Rel(v.Target, path)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if _, err := os.Stat(filepath.Join(v.Source, rel)); err != nil {
			t.Errorf("%s: --config %s: %v", name, path, err)
		}
		return
	}
	t.Errorf("%s: --config %s is not in a bind mount", name, path)
}

// TestComposePublishedPortsUnique catches a copied entry that kept its host port: compose accepts
// it and `docker compose up` fails on it.
func TestComposePublishedPortsUnique(t *testing.T) {
	t.Parallel()
	forEachComposeProject(t, func(t *testing.T, _ string, p *types.Project) {
		owner := map[string]string{}
		for _, name := range slices.Sorted(maps.Keys(p.Services)) {
			for _, port := range p.Services[name].Ports {
				if port.Published == "" {
					continue
				}
				key := fmt.Sprintf("%s:%s/%s", port.HostIP, port.Published, port.Protocol)
				if other, ok := owner[key]; ok {
					t.Errorf("host port %s is published by both %s and %s", key, other, name)
				}
				owner[key] = name
			}
		}
	})
}

// TestComposeDockerfile checks the Dockerfile against what the tests above assume: it builds
// services/${SERVICE}/cmd/${SERVICE} and copies every module in go.work.
func TestComposeDockerfile(t *testing.T) {
	t.Parallel()
	root := composeRootDir(t)
	b, err := os.ReadFile(filepath.Join(root, composeDockerfile))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{
		"ARG " + composeServiceArg,
		`"./services/${SERVICE}/cmd/${SERVICE}"`,
		`ENTRYPOINT ["/service"]`,
		fmt.Sprintf("EXPOSE %d", composeHTTPPort),
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile: no %s", want)
		}
	}

	var copied []string // top-level directories the build stage copies
	for line := range strings.Lines(df) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "COPY" && strings.HasSuffix(f[1], "/") && f[1] == f[2] {
			copied = append(copied, strings.TrimSuffix(f[1], "/"))
		}
	}
	for _, mod := range workspaceModules(t, root) {
		top, _, _ := strings.Cut(strings.TrimPrefix(filepath.ToSlash(mod), "./"), "/")
		if !slices.Contains(copied, top) {
			t.Errorf("go.work uses %s, but the Dockerfile does not COPY %s/ (a workspace build needs every module)", mod, top)
		}
	}
}

// workspaceModules returns the directories named by go.work's use directives.
func workspaceModules(t *testing.T, root string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var mods []string
	inUse := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "//")
		line = strings.TrimSpace(line)
		switch {
		case line == "use (":
			inUse = true
		case inUse && line == ")":
			inUse = false
		case inUse && line != "":
			mods = append(mods, strings.Trim(line, `"`))
		case strings.HasPrefix(line, "use "):
			mods = append(mods, strings.Trim(strings.TrimSpace(strings.TrimPrefix(line, "use ")), `"`))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(mods) == 0 {
		t.Fatal("go.work: no use directives")
	}
	return mods
}

// In the cluster stack every service that talks to NATS provisions the streams with 3 replicas.
func TestComposeClusterReplicas(t *testing.T) {
	t.Parallel()
	p := loadComposeProject(t, composeProjects["cluster"])
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		env := p.Services[name].Environment
		if env["NATS_URL"] == nil {
			continue
		}
		if r := env["OMNIBUS_STREAM_REPLICAS"]; r == nil || *r != "3" {
			t.Errorf("%s talks to NATS but does not set OMNIBUS_STREAM_REPLICAS=3 in docker-compose.cluster.yml", name)
		}
	}
}

// pinnedImage is an image reference with its tag (for readers) and its digest (what is pulled).
var pinnedImage = regexp.MustCompile(`^[a-z0-9][a-z0-9./_-]*:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$`)

// TestImagesPinned: every image the stacks pull, the compose files' and the Dockerfile's bases,
// is pinned by digest beside its tag (task compose:pin refreshes them), so a rebuild or a new
// node gets the bytes that were tested, and one tag is pinned to one digest everywhere.
func TestImagesPinned(t *testing.T) {
	t.Parallel()
	digests := map[string]string{} // repo:tag → digest
	check := func(where, ref string) {
		if !pinnedImage.MatchString(ref) {
			t.Errorf("%s: image %q is not pinned as repo:tag@sha256:<digest> (run task compose:pin)", where, ref)
			return
		}
		tag, digest, _ := strings.Cut(ref, "@")
		if d, ok := digests[tag]; ok && d != digest {
			t.Errorf("%s: %s pinned to %s here and to %s elsewhere", where, tag, digest, d)
		}
		digests[tag] = digest
	}
	forEachComposeProject(t, func(t *testing.T, file string, p *types.Project) {
		for _, name := range slices.Sorted(maps.Keys(p.Services)) {
			if svc := p.Services[name]; svc.Build == nil {
				check(file+": "+name, svc.Image)
			}
		}
	})
	b, err := os.ReadFile(filepath.Join(composeRootDir(t), composeDockerfile))
	if err != nil {
		t.Fatal(err)
	}
	froms := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "FROM" {
			continue
		}
		froms++
		ref := f[1]
		if strings.HasPrefix(ref, "--platform=") && len(f) > 2 {
			ref = f[2]
		}
		check("Dockerfile", ref)
	}
	if froms < 2 {
		t.Fatalf("Dockerfile: %d FROM lines, want the build and the run stage", froms)
	}
}
