// Command sentiment runs the sentiment connector on its own (the container entry point).
package main

import (
	"github.com/omnibus-dev/omnibus/pkg/service"
	"github.com/omnibus-dev/omnibus/services/sentiment"
)

func main() { service.Main(sentiment.Service()) }
