// Command douyin runs the Douyin private-message connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/douyin"
)

func main() { service.Main(douyin.Service()) }
