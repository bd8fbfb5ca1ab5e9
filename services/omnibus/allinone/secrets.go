package allinone

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// SecretsFile is where DemoSecrets keeps the demo's secrets, in the data dir.
const SecretsFile = "secrets.json"

// DemoSecrets returns the secrets the demo's simulated vendors share with the connectors, kept in
// <dataDir>/secrets.json (mode 0600): read when it is there, else generated with generate and
// written, so that a restart keeps them (web chat visitors keep their ids, vendors their
// signatures) and two data dirs never share them. A name generate returns that the file lacks
// (a secret added by a later version) is added to the file; the ones there are kept.
func DemoSecrets(dataDir string, generate func() (map[string]string, error)) (map[string]string, error) {
	path := filepath.Join(dataDir, SecretsFile)
	have := map[string]string{}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &have); err != nil {
			return nil, fmt.Errorf("%s: %w (delete it to generate new demo secrets)", path, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(path, 0o600); err != nil {
				return nil, fmt.Errorf("%s is readable by others and cannot be restricted: %w", path, err)
			}
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("demo secrets: %w", err)
	}
	fresh, err := generate()
	if err != nil {
		return nil, err
	}
	added := false
	for k, v := range fresh {
		if _, ok := have[k]; !ok {
			have[k], added = v, true
		}
	}
	if !added {
		return have, nil
	}
	if err := os.MkdirAll(dataDir, 0o751); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	out, _ := json.MarshalIndent(have, "", "  ")
	tmp, err := os.CreateTemp(dataDir, ".secrets-*.json")
	if err != nil {
		return nil, fmt.Errorf("demo secrets: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("demo secrets: %w", err)
	}
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("demo secrets: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("demo secrets: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("demo secrets: %w", err)
	}
	return have, nil
}
