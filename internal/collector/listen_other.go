//go:build !linux

package collector

import (
	"context"
	"net"
)

// listen opens a TCP listener on address. The backlog is applied on Linux
// only; elsewhere listen(2) gets the system default.
func listen(ctx context.Context, address string, _ int) (net.Listener, error) {
	return (&net.ListenConfig{}).Listen(ctx, "tcp", address)
}

const backlogApplied = false
