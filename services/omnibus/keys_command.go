package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/pii"
	"github.com/omnibus-dev/omnibus/services/omnibus/allinone"
)

const keysUsage = `omnibus keys — the personal-data keyset (docs/operations.md, Personal data).

Usage:
  omnibus keys init [flags]     create a keyset file (AEAD + blind index keysets); refuses to overwrite one
  omnibus keys rotate [flags]   add a new primary AEAD key; old keys still decrypt, blind indexes stay
  omnibus keys show [flags]     print the key ids (primary first)
  omnibus keys rewrap --to-kek URI [flags]   re-encrypt the file under another key-encryption key
                                ("" writes it clear)

Flags:
  --file PATH   the keyset file (default $PII_KEYSET_FILE, else $OMNIBUS_DATA_DIR/pii-keyset.json)
  --kek URI     the key-encryption key it is wrapped with (default $PII_KEK_URI; env://VAR, file://PATH
                or a KMS URI a build registers; empty: clear)

Running services read the file at start: restart them after a rotation (until then they keep
sealing with the previous primary, which every holder of the new file still decrypts).
`

func keysCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	var cfg allinone.Config
	if err := config.Load(&cfg, os.LookupEnv); err != nil {
		return err
	}
	sub := args[0]
	fs := flag.NewFlagSet("omnibus keys "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", cfg.KeysetFile(), "the keyset file")
	kek := fs.String("kek", cfg.PII.KEKURI, "the key-encryption key URI (empty: clear)")
	toKEK := fs.String("to-kek", "", "rewrap: the new key-encryption key URI (empty: clear)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch sub {
	case "init":
		if _, err := os.Stat(*file); err == nil {
			return fmt.Errorf("keys init: %s exists; rotate it instead (a new keyset would make everything sealed with it unreadable)", *file)
		}
		k, _, err := pii.EnsureFile(*file, *kek)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s (primary key %d)\n", *file, k.PrimaryKeyID())
	case "rotate":
		id, err := pii.RotateFile(*file, *kek)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rotated %s: new primary key %d; restart the services that read it\n", *file, id)
	case "show":
		k, err := pii.LoadFile(*file, *kek)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s\nprimary %d\nkeys    %v\n", *file, k.PrimaryKeyID(), k.KeyIDs())
	case "rewrap":
		k, err := pii.LoadFile(*file, *kek)
		if err != nil {
			return err
		}
		if err := k.WriteFile(*file, *toKEK); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rewrapped %s\n", *file)
	default:
		return fmt.Errorf("keys: unknown subcommand %q\n\n%s", sub, keysUsage)
	}
	return nil
}
