// Command weibo runs the Weibo fan service connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/weibo"
)

func main() { service.Main(weibo.Service()) }
