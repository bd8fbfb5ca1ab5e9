package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/natsauth"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/telemetry"
	"github.com/omnibus-dev/omnibus/pkg/tlsconf"
	"github.com/omnibus-dev/omnibus/services/audit"
	"github.com/omnibus-dev/omnibus/services/omnibus/allinone"
	"github.com/omnibus-dev/omnibus/services/omnibus/internal/demo"
	"github.com/omnibus-dev/omnibus/services/sandbox"
)

const usage = `omnibus — the omnichannel message bus, all in one process.

Usage:
  omnibus [run] [--rebuild]     run every service on embedded NATS and Postgres, kept in OMNIBUS_DATA_DIR;
                                --rebuild: if the database is empty but the log is not, rebuild the
                                stores from the log first (OMNIBUS_REBUILD=true)
  omnibus dlq list [flags]      list dead letters with their reasons
  omnibus dlq redrive [flags]   republish chosen dead letters to their original subjects
  omnibus replay [flags]        print stored events, oldest first, as NDJSON CloudEvents (-h: flags)
  omnibus unmerge --merge-id ID undo a customer merge (identities, conversations, messages go back)
  omnibus close|reopen --conversation ID   close or reopen a conversation
  omnibus canary --target sms --plan tencent:10%   start, change or end (--plan off) a canary rollout
  omnibus audit [flags]         list third-party call records, newest first (-h: flags)
  omnibus keys init|rotate|show|rewrap   the personal-data keyset (omnibus keys -h)
  omnibus nats keys|config|provision   NATS users, permissions and streams for a deployment
                                with its own NATS server (-h: details)
  omnibus config                print every environment variable with its default
  omnibus health                exit 0 if the running all-in-one answers /healthz

dlq flags: --service S  --subject PATTERN  --reason TEXT  --seq 1,2,3  --limit N  --json  --server URL
           (redrive needs at least one selector, or --all)
dlq and replay connect to --server, default $NATS_URL, else the all-in-one's nats://127.0.0.1:4222.
`

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (!strings.HasPrefix(args[0], "-") || args[0] == "-h" || args[0] == "--help") {
		cmd, args = args[0], args[1:] // otherwise: flags of run (omnibus --rebuild)
	}
	var err error
	switch cmd {
	case "run":
		err = runAll(args, stderr)
	case "dlq":
		err = dlq(args, stdout)
	case "replay":
		err = replay(args, stdout, stderr)
	case "unmerge", "close", "reopen":
		err = deskCommand(cmd, args, stdout)
	case "canary":
		err = canaryCommand(args, stdout)
	case "nats":
		err = natsCommand(args, stdout)
	case "audit":
		err = audit.Command(context.Background(), args, os.LookupEnv, stdout, stderr)
	case "keys":
		err = keysCommand(args, stdout, stderr)
	case "config":
		printConfig(stdout, len(args) > 0 && args[0] == "--markdown")
	case "health":
		var cfg allinone.Config
		if err := config.Load(&cfg, os.LookupEnv); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		return service.HealthCheck(cfg.HTTPAddr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "omnibus:", err)
		return 1
	}
	return 0
}

func runAll(args []string, stderr io.Writer) error {
	var cfg allinone.Config
	if err := config.Load(&cfg, os.LookupEnv); err != nil {
		return err
	}
	fs := flag.NewFlagSet("omnibus run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&cfg.Rebuild, "rebuild", cfg.Rebuild, "if the database is empty but the log is not, rebuild the stores from the log first (OMNIBUS_REBUILD)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q\n\n%s", fs.Arg(0), usage)
	}
	log := telemetry.NewLogger(os.Stderr, cfg.LogFormat, cfg.LogLevel)
	for _, err := range config.Unknown(&cfg, os.Environ(), "OMNIBUS_") {
		log.Warn(err.Error())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	overlay := localEnv(cfg.DataDir)
	var secrets map[string]string
	if cfg.Simulate {
		// The demo's vendors share secrets with the connectors: generated per data dir and kept
		// in it (variables set in the environment win).
		var err error
		if secrets, err = allinone.DemoSecrets(cfg.DataDir, sandbox.NewSecrets); err != nil {
			return err
		}
	}
	env := func(k string) (string, bool) {
		if v, ok := os.LookupEnv(k); ok {
			return v, true
		}
		v, ok := overlay[k]
		return v, ok
	}
	build := func(base string) []service.Service {
		svcs := services()
		if cfg.Simulate {
			maps.Copy(overlay, simulationEnv(base, secrets))
			svcs = append(svcs, simulated()...)
			secret, _ := env("EXAMPLE_SECRET")
			svcs = append(svcs, demo.Service(demo.Options{Base: base, Secret: secret, Interval: cfg.SimInterval}))
		}
		return svcs
	}
	return allinone.Run(ctx, cfg, build, env, log, nil)
}

// simulationEnv is what the all-in-one overlays on its environment to simulate the vendors served
// at base: the sandbox's connector configuration, its secrets replaced by the data dir's
// (allinone.DemoSecrets), so that no entry of the demo is guarded by a value from the source.
func simulationEnv(base string, secrets map[string]string) map[string]string {
	env := sandbox.ConnectorEnv(base)
	maps.Copy(env, secrets)
	return env
}

func printConfig(w io.Writer, markdown bool) {
	if markdown {
		printConfigMarkdown(w)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tDEFAULT\tMEANING")
	seen := map[string]bool{}
	dump := func(cfg any) {
		for _, f := range config.Describe(cfg) {
			if !seen[f.Env] {
				seen[f.Env] = true
				fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Env, f.Default, f.Desc)
			}
		}
	}
	dump(&allinone.Config{})
	for _, s := range append(services(), simulated()...) {
		if s.Config != nil {
			dump(s.Config)
		}
	}
	_ = tw.Flush()
}

// printConfigMarkdown prints every variable as Markdown tables: the all-in-one's, the ones every
// service run on its own reads, then one table per service. docs/configuration.md holds this
// output between its config markers (TestConfigCommand keeps the two equal).
func printConfigMarkdown(w io.Writer) {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
	table := func(title string, cfg any) {
		fields := config.Describe(cfg)
		if len(fields) == 0 {
			return
		}
		fmt.Fprintf(w, "### %s\n\n", title)
		if enable := config.Enablers(cfg); len(enable) > 0 {
			fmt.Fprintf(w, "Optional: the all-in-one runs it when one of `%s` is set, and otherwise lists it as disabled.\n\n",
				strings.Join(enable, "`, `"))
		}
		fmt.Fprint(w, "| variable | default | meaning |\n|---|---|---|\n")
		for _, f := range fields {
			def := ""
			if f.Default != "" {
				def = "`" + f.Default + "`"
			}
			fmt.Fprintf(w, "| `%s` | %s | %s |\n", f.Env, cell(def), cell(f.Desc))
		}
		fmt.Fprintln(w)
	}
	table("The all-in-one (`go run ./services/omnibus`)", &allinone.Config{})
	table("Every service run on its own (`services/<name>/cmd/<name>`)", &service.Base{})
	for _, s := range append(services(), simulated()...) {
		if s.Config != nil {
			table("`"+s.Name+"`", s.Config)
		}
	}
}

func dlq(args []string, w io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "redrive") {
		return errors.New("dlq: want list or redrive\n\n" + usage) //nolint:staticcheck // ST1005: the usage follows, printed as is
	}
	sub := args[0]
	fs := flag.NewFlagSet("dlq "+sub, flag.ContinueOnError)
	var f bus.DeadLetterFilter
	var seqs string
	var asJSON, all bool
	fs.StringVar(&f.Service, "service", "", "only dead letters of this service (omni.dlq.<service>)")
	fs.StringVar(&f.Subject, "subject", "", "original subject pattern, e.g. omni.in.sms.>")
	fs.StringVar(&f.ReasonContains, "reason", "", "substring of the reason")
	fs.StringVar(&seqs, "seq", "", "comma-separated OMNI_DLQ sequences")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many")
	fs.BoolVar(&asJSON, "json", false, "list as NDJSON")
	fs.BoolVar(&all, "all", false, "redrive every dead letter")
	server := fs.String("server", defaultServer(), serverFlagHelp)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	for _, s := range strings.Split(seqs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("--seq: %q is not a sequence number", s)
		}
		f.Seqs = append(f.Seqs, n)
	}
	nc, client, err := connectCLI("omnibus-dlq", *server)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if sub == "redrive" {
		if !all && f.Service == "" && f.Subject == "" && f.ReasonContains == "" && len(f.Seqs) == 0 {
			return errors.New("dlq redrive: choose what to redrive (--seq, --subject, --reason, --service) or pass --all")
		}
		n, err := client.Redrive(ctx, f)
		fmt.Fprintf(w, "redriven: %d\n", n)
		return err
	}
	letters, err := client.ListDeadLetters(ctx, f)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(w)
		for _, d := range letters {
			_ = enc.Encode(map[string]any{"seq": d.Seq, "time": d.Time, "consumer": d.Consumer, "subject": d.OriginalSubject,
				"deliveries": d.Deliveries, "event_id": d.EventID, "event_type": d.EventType, "reason": d.Reason})
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tCONSUMER\tSUBJECT\tDELIVERIES\tEVENT\tREASON")
	for _, d := range letters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Seq, d.Time.UTC().Format(time.RFC3339), d.Consumer,
			d.OriginalSubject, d.Deliveries, d.EventID, d.Reason)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d dead letter(s)\n", len(letters))
	return nil
}

// connectCLI connects an operator command to NATS_URL (default: the all-in-one's embedded
// server), failing fast when nothing listens there.
// defaultServer is the NATS server the commands connect to without --server: $NATS_URL, else
// the all-in-one's.
func defaultServer() string {
	if url := os.Getenv("NATS_URL"); url != "" {
		return url
	}
	return "nats://127.0.0.1:4222"
}

// serverFlagHelp is the --server flag's help, as the nats CLI names it.
const serverFlagHelp = "NATS server URL(s), comma-separated (default $NATS_URL, else the all-in-one's nats://127.0.0.1:4222)"

func connectCLI(name, url string) (*nats.Conn, *bus.Client, error) {
	creds, err := cliCredentials()
	if err != nil {
		return nil, nil, err
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name(name), nats.Timeout(3 * time.Second)}, creds...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w (is omnibus running? give --server or NATS_URL otherwise)", url, err)
	}
	client, err := bus.Connect(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, client, nil
}

// cliCredentials are the nkey (and TLS) an operator command connects with: $NATS_NKEY_FILE, else the
// all-in-one's administrator seed in its data dir ($OMNIBUS_DATA_DIR, default .omnibus) when
// there is one, else none (a server without authentication).
func cliCredentials() ([]nats.Option, error) {
	var t tlsconf.NATS // NATS_TLS_CA_FILE=.omnibus/tls/ca.pem for an all-in-one with OMNIBUS_TLS_LOCAL
	if err := config.Load(&t, os.LookupEnv); err != nil {
		return nil, err
	}
	tlsOpts, err := t.Options()
	if err != nil {
		return nil, err
	}
	path, explicit := os.LookupEnv("NATS_NKEY_FILE")
	if !explicit {
		path = filepath.Join(cmp.Or(os.Getenv("OMNIBUS_DATA_DIR"), ".omnibus"), "nats", allinone.AdminSeedFile)
	}
	seed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return tlsOpts, nil
	}
	if err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	u, err := natsauth.UserFromSeed("admin", seed)
	if err != nil {
		return nil, fmt.Errorf("NATS credentials %s: %w", path, err)
	}
	return append([]nats.Option{u.Nkey()}, tlsOpts...), nil
}
