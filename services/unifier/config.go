package unifier

import (
	"github.com/omnibus-dev/omnibus/pkg/config"
	"github.com/omnibus-dev/omnibus/pkg/service"
)

func loadConfig(cfg *Config, d service.Deps) error {
	return config.Load(cfg, d.Env)
}
