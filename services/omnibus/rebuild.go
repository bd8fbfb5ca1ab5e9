package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/telemetry"
	"github.com/omnibus-dev/omnibus/services/unifier"
)

func init() { rebuild = rebuildStore }

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
	st, err := unifier.Rebuild(ctx, client, *url, os.LookupEnv, log)
	fmt.Fprintf(os.Stderr, "rebuilt: %d events applied, %d rejected, %d undecodable, in %s\n", st.Events, st.Failed, st.Undecodable, st.Took.Round(1e6))
	return err
}
