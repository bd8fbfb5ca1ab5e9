package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/omnibus-dev/omnibus/pkg/bus"
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/natsauth"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

const natsUsage = `omnibus nats — NATS users and permissions for a deployment with its own NATS server
(docker-compose.yml, the cluster, Kubernetes); the all-in-one does all this by itself.

  omnibus nats keys [--dir deploy/nats/keys]   create the nkey seeds (one per service, admin,
                                               reader; kept when they exist) and nkeys.env, the
                                               public keys the server's configuration reads
  omnibus nats config                          print the server's authorization block, generated
                                               from the services' specs (deploy/nats/auth.conf)
  omnibus nats provision [--server URL]        create or update the omnibus streams as admin
                                               ($NATS_NKEY_FILE, the admin seed); services whose
                                               NATS_NKEY_FILE is set only check they exist
`

func natsCommand(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("nats: which command (keys, config or provision)? omnibus nats -h lists them")
	}
	switch args[0] {
	case "keys":
		fs := flag.NewFlagSet("nats keys", flag.ContinueOnError)
		dir := fs.String("dir", filepath.Join("deploy", "nats", "keys"), "where the seeds and nkeys.env go")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return writeNATSKeys(*dir, stdout)
	case "config":
		users, err := natsConfigUsers(services())
		if err != nil {
			return err
		}
		return natsauth.WriteConfig(stdout, users)
	case "provision":
		fs := flag.NewFlagSet("nats provision", flag.ContinueOnError)
		server := fs.String("server", defaultServer(), serverFlagHelp)
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		var streams bus.StreamsEnv
		if err := config.Load(&streams, os.LookupEnv); err != nil {
			return err
		}
		sc, err := streams.Config()
		if err != nil {
			return err
		}
		nc, _, err := connectCLI("omnibus-provision", *server)
		if err != nil {
			return err
		}
		defer nc.Close()
		client, err := bus.Connect(nc, bus.WithStreams(sc))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := client.Provision(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "omnibus streams provisioned on", *server)
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, natsUsage)
		return nil
	}
	return fmt.Errorf("nats: unknown command %q\n\n%s", args[0], natsUsage)
}

// natsConfigUsers are the users of a deployment: the administrator, the reader and every
// service that uses the bus.
func natsConfigUsers(svcs []service.Service) ([]natsauth.ConfigUser, error) {
	users := []natsauth.ConfigUser{{Name: "admin", All: true}, {Name: "reader", Permissions: natsauth.Reader()}}
	for _, s := range svcs {
		if s.NoBus {
			continue
		}
		p, err := natsauth.ForService(s)
		if err != nil {
			return nil, err
		}
		users = append(users, natsauth.ConfigUser{Name: s.Name, Permissions: p})
	}
	return users, nil
}

// writeNATSKeys creates dir/<user>.nk for every user of natsConfigUsers (0600; an existing seed
// is kept) and dir/nkeys.env with their public keys.
func writeNATSKeys(dir string, stdout io.Writer) error {
	users, err := natsConfigUsers(services())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var env strings.Builder
	env.WriteString("# Public nkeys of the omnibus NATS users (omnibus nats keys); the seeds are the .nk files beside.\n")
	created := 0
	for _, u := range users {
		path := filepath.Join(dir, u.Name+".nk")
		var user natsauth.User
		seed, err := os.ReadFile(path)
		switch {
		case err == nil:
			user, err = natsauth.UserFromSeed(u.Name, seed)
		case errors.Is(err, fs.ErrNotExist):
			if user, err = natsauth.NewUser(u.Name); err == nil {
				err = os.WriteFile(path, append(user.Seed, '\n'), 0o600)
				created++
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		fmt.Fprintf(&env, "%s=%s\n", natsauth.NkeyVar(u.Name), user.Public)
	}
	if err := os.WriteFile(filepath.Join(dir, "nkeys.env"), []byte(env.String()), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d NATS users in %s (%d new seeds); nkeys.env holds their public keys\n", len(users), dir, created)
	return nil
}
