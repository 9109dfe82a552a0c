// Command weir runs stream-processing pipelines declared in YAML.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/weir-dev/weir/internal/cli"
)

func main() {
	// The first SIGINT/SIGTERM cancels ctx: a graceful stop. Once it has,
	// the default behaviour is restored, so a second signal ends the
	// process at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
