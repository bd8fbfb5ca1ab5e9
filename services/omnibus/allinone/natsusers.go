package allinone

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/omnibus-dev/omnibus/pkg/natsauth"
	"github.com/omnibus-dev/omnibus/pkg/natsembed"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

// The operators' nkey seeds, kept in the data dir's nats/ (0600) so the omnibus CLI and the
// nats CLI reach the embedded server across restarts:
//
//	nats --server nats://127.0.0.1:4222 --nkey .omnibus/nats/reader.nk sub 'omni.desk.>'
const (
	AdminSeedFile  = "admin.nk"  // every permission: the process itself, omnibus dlq/replay/canary
	ReaderSeedFile = "reader.nk" // read-only on OMNI_DESK and OMNI_IN, for downstream subscribers
)

// Users are the embedded server's users: the administrator, the reader, and one user per
// service, generated at each start (its seed never leaves the process) with the permissions
// its spec implies (pkg/natsauth).
type Users struct {
	admin, reader natsauth.User
	services      map[string]natsauth.User
	perms         map[string]natsauth.Permissions
}

// NATSUsers generates the users of the services (and reads or creates the operators' seeds in
// dir).
func NATSUsers(dir string, services []service.Service) (*Users, error) {
	u := &Users{services: map[string]natsauth.User{}, perms: map[string]natsauth.Permissions{}}
	var err error
	if u.admin, err = seedFile(filepath.Join(dir, AdminSeedFile), "admin"); err != nil {
		return nil, err
	}
	if u.reader, err = seedFile(filepath.Join(dir, ReaderSeedFile), "reader"); err != nil {
		return nil, err
	}
	for _, s := range services {
		if s.NoBus {
			continue
		}
		p, err := natsauth.ForService(s)
		if err != nil {
			return nil, err
		}
		user, err := natsauth.NewUser(s.Name)
		if err != nil {
			return nil, err
		}
		u.services[s.Name], u.perms[s.Name] = user, p
	}
	return u, nil
}

// Admin is the administrator (every permission).
func (u *Users) Admin() natsauth.User { return u.admin }

// Reader is the operators' read-only user.
func (u *Users) Reader() natsauth.User { return u.reader }

// Service is the user service connects as.
func (u *Users) Service(name string) (natsauth.User, bool) { s, ok := u.services[name]; return s, ok }

// Server lists the users for the embedded server.
func (u *Users) Server() []natsembed.User {
	reader := natsauth.Reader()
	out := []natsembed.User{
		{Name: "admin", Nkey: u.admin.Public, All: true},
		{Name: "reader", Nkey: u.reader.Public, Publish: reader.Publish, Subscribe: reader.Subscribe},
	}
	for name, user := range u.services {
		p := u.perms[name]
		out = append(out, natsembed.User{Name: name, Nkey: user.Public, Publish: p.Publish, Subscribe: p.Subscribe})
	}
	return out
}

// seedFile reads the user's seed from path, creating it (0600) on first use.
func seedFile(path, name string) (natsauth.User, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return natsauth.UserFromSeed(name, b)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return natsauth.User{}, fmt.Errorf("nats %s seed: %w", name, err)
	}
	u, err := natsauth.NewUser(name)
	if err != nil {
		return natsauth.User{}, err
	}
	if err := os.WriteFile(path, append(u.Seed, '\n'), 0o600); err != nil {
		return natsauth.User{}, fmt.Errorf("nats %s seed: %w", name, err)
	}
	return u, nil
}
