// Command omnibus runs the whole system in one process on embedded defaults, and holds the
// operator subcommands:
//
//	omnibus [--rebuild]     run everything (embedded NATS and Postgres kept in .omnibus, demo)
//	omnibus dlq list|redrive  inspect and redrive dead letters
//	omnibus keys rotate     add a new primary key to the personal-data keyset
//	omnibus config          print every environment variable with its default
//	omnibus health          exit 0 if the running all-in-one answers /healthz
package main

import (
	"os"
	"path/filepath"

	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/assist"
	"github.com/omnibus-dev/omnibus/services/audit"
	"github.com/omnibus-dev/omnibus/services/crm"
	"github.com/omnibus-dev/omnibus/services/desk"
	"github.com/omnibus-dev/omnibus/services/douyin"
	"github.com/omnibus-dev/omnibus/services/example"
	"github.com/omnibus-dev/omnibus/services/kuaishou"
	"github.com/omnibus-dev/omnibus/services/logistics"
	"github.com/omnibus-dev/omnibus/services/oms"
	"github.com/omnibus-dev/omnibus/services/payment"
	"github.com/omnibus-dev/omnibus/services/sandbox"
	"github.com/omnibus-dev/omnibus/services/sentiment"
	"github.com/omnibus-dev/omnibus/services/sms"
	"github.com/omnibus-dev/omnibus/services/ticket"
	"github.com/omnibus-dev/omnibus/services/unifier"
	"github.com/omnibus-dev/omnibus/services/voice"
	"github.com/omnibus-dev/omnibus/services/webchat"
	"github.com/omnibus-dev/omnibus/services/wechatkf"
	"github.com/omnibus-dev/omnibus/services/weibo"
)

// services is every service the all-in-one composes; a new service adds one line here.
func services() []service.Service {
	return []service.Service{
		example.Service(),
		withRebuild(unifier.Service(), rebuildUnifier),
		wechatkf.Service(),
		webchat.Service(),
		sms.Service(),
		weibo.Service(),
		douyin.Service(),
		kuaishou.Service(),
		voice.Service(),
		crm.Service(),
		oms.Service(),
		audit.Service(),
		desk.Service(),
		logistics.Service(),
		ticket.Service(),
		payment.Service(),
		assist.Service(),
		sentiment.Service(),
	}
}

// simulated returns what the all-in-one adds when OMNIBUS_SIMULATE is on: the vendor sandbox
// (the vendors and the customers).
func simulated() []service.Service {
	return []service.Service{sandbox.Service()}
}

// localEnv is the configuration of what services keep on local disk, under the all-in-one's data
// dir: the voice connector's spool of calls in progress and its recordings bucket, which the
// desk plays recordings from.
func localEnv(dataDir string) map[string]string {
	recordings := "file://" + filepath.Join(dataDir, "voice", "recordings")
	return map[string]string{
		"VOICE_SPOOL_DIR":        filepath.Join(dataDir, "voice", "spool"),
		"VOICE_RECORDING_BUCKET": recordings,
		"DESK_RECORDING_BUCKET":  recordings,
	}
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
