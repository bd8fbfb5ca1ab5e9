package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/event"
	"github.com/omnibus-dev/omnibus/schemas"
)

// deskCommand publishes an operator's command to the unifier through the log (so a rebuild
// replays it): `omnibus unmerge --merge-id ID`, `omnibus close --conversation ID`,
// `omnibus reopen --conversation ID`.
func deskCommand(cmd string, args []string, w io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	name := "conversation"
	if cmd == "unmerge" {
		name = "merge-id"
	}
	id := fs.String(name, "", "the merge (unmerge) or conversation (close, reopen) to act on")
	reason := fs.String("reason", "", "why, recorded with the change")
	agent := fs.String("agent", os.Getenv("USER"), "who asks")
	server := fs.String("server", defaultServer(), serverFlagHelp)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" {
		return fmt.Errorf("%s: give the id with --%s", cmd, name)
	}
	typ, subject, data := "", "", map[string]any{}
	switch cmd {
	case "unmerge":
		typ, subject, data["merge_id"] = schemas.TypeCustomerUnmergeRequested, "omni.in.desk.customer", *id
	case "close":
		typ, subject, data["conversation_id"] = schemas.TypeConversationCloseRequested, "omni.in.desk.conversation", *id
	case "reopen":
		typ, subject, data["conversation_id"] = schemas.TypeConversationReopenRequested, "omni.in.desk.conversation", *id
	}
	if *reason != "" {
		data["reason"] = *reason
	}
	if *agent != "" {
		data["agent_id"] = *agent
	}
	e, err := event.New(typ, "/cli/omnibus", data, event.WithPartitionKey(*id))
	if err != nil {
		return err
	}
	nc, client, err := connectCLI("omnibus-"+cmd, *server)
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Publish(ctx, subject, e); err != nil {
		return errors.Join(fmt.Errorf("%s not sent", cmd), err)
	}
	fmt.Fprintf(w, "%s requested: event %s on %s; the unifier applies it and emits the desk event\n", cmd, e.ID(), subject)
	return nil
}
