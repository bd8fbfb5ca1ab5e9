package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/canary"
	"github.com/omnibus-dev/omnibus/pkg/event"
)

// canaryCommand publishes an operator's omni.ops.canary.set.requested: the target's service
// applies the plan and announces it (omni.ops.canary.started, changed or ended).
func canaryCommand(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("canary", flag.ContinueOnError)
	target := fs.String("target", "sms", "what is rolled out (the SMS connector's providers: sms)")
	plan := fs.String("plan", "", "the plan, e.g. tencent:10% or tencent:100%;agent=a-17,a-23; off ends the rollout (README: Canary rollout)")
	reason := fs.String("reason", "", "why, recorded with the change")
	by := fs.String("by", os.Getenv("USER"), "who asks")
	server := fs.String("server", defaultServer(), serverFlagHelp)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *plan == "" {
		return errors.New("canary: give the plan with --plan, e.g. --plan tencent:10% (or --plan off)")
	}
	data := canary.Command{Target: *target, Plan: *plan, By: *by, Reason: *reason}
	e, err := event.New(canary.TypeSet, "/cli/omnibus", data, event.WithPartitionKey("canary:"+*target))
	if err != nil {
		return err
	}
	nc, client, err := connectCLI("omnibus-canary", *server)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	subject := canary.SubjectSet(*target)
	if err := client.Publish(ctx, subject, e); err != nil {
		return errors.Join(errors.New("canary command not sent"), err)
	}
	fmt.Fprintf(w, "canary %s requested: event %s on %s; the %s service applies it and announces it on omni.ops.canary.*\n", *plan, e.ID(), subject, *target)
	return nil
}
