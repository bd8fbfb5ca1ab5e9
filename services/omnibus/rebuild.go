package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/pkg/telemetry"
	"github.com/omnibus-dev/omnibus/services/omnibus/allinone"
	"github.com/omnibus-dev/omnibus/services/unifier"
)

func init() { rebuild = rebuildStore }

// withRebuild gives s the rebuild the all-in-one runs on request (omnibus --rebuild) when the
// database is empty while the log says s had consumed it.
func withRebuild(s service.Service, fn func(context.Context, service.Deps) error) service.Service {
	s.Rebuild = fn
	return s
}

// rebuildUnifier recreates the unifier's session store in the empty database d.DB from OMNI_IN +
// OMNI_TOOL on d.Bus: the code path of `omnibus replay --rebuild`.
func rebuildUnifier(ctx context.Context, d service.Deps) error {
	st, err := unifier.Rebuild(ctx, d.Bus, d.DB.Config().ConnString(), d.Env, d.PII, d.Log)
	if err != nil {
		return err
	}
	d.Log.Info("session store rebuilt from the log", "events", st.Events, "rejected", st.Failed, "undecodable", st.Undecodable,
		"took", st.Took.Round(time.Millisecond))
	return nil
}

// rebuildStore is `omnibus replay --rebuild --database-url URL`: it recreates the unifier's
// session store in an empty database from OMNI_IN + OMNI_TOOL.
func rebuildStore(ctx context.Context, client *bus.Client, args []string) error {
	fs := flag.NewFlagSet("replay --rebuild", flag.ContinueOnError)
	url := fs.String("database-url", os.Getenv("DATABASE_URL"), "the EMPTY Postgres database to rebuild into (default $DATABASE_URL)")
	_ = fs.Bool("rebuild", true, "rebuild the session store")
	fs.SetOutput(os.Stderr)
	// Only --database-url and --rebuild matter here; the selection flags of replay do not apply.
	var own []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--rebuild" || a == "-rebuild":
			own = append(own, a)
		case a == "--server" || a == "-server":
			i++ // connected already (serverArg)
		case a == "--database-url" || a == "-database-url":
			own = append(own, a)
			if i+1 < len(args) {
				i++
				own = append(own, args[i])
			}
		case len(a) > 15 && (a[:15] == "--database-url=" || a[:14] == "-database-url="):
			own = append(own, a)
		}
	}
	if err := fs.Parse(own); err != nil {
		return err
	}
	if *url == "" {
		return fmt.Errorf("replay --rebuild: give the empty target database with --database-url or DATABASE_URL")
	}
	log := telemetry.NewLogger(os.Stderr, "text", "info")
	// The keys the live unifier has: PII_KEYSET_FILE, else the all-in-one's keyset if there is
	// one. Without keys, sealed identities match by their blind indexes and identities the log
	// holds in clear (written before sealing) are stored in clear.
	var cfg allinone.Config
	if err := config.Load(&cfg, os.LookupEnv); err != nil {
		return err
	}
	var keys *pii.Keys
	if _, err := os.Stat(cfg.KeysetFile()); err == nil || cfg.PII.KeysetFile != "" {
		if keys, err = pii.LoadFile(cfg.KeysetFile(), cfg.PII.KEKURI); err != nil {
			return err
		}
	}
	st, err := unifier.Rebuild(ctx, client, *url, os.LookupEnv, keys, log)
	fmt.Fprintf(os.Stderr, "rebuilt: %d events applied, %d rejected, %d undecodable, in %s\n", st.Events, st.Failed, st.Undecodable, st.Took.Round(1e6))
	return err
}
