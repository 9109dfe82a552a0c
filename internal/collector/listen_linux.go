package collector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
)

// listen opens a TCP listener on address. With backlog > 0 it creates the
// socket itself, so that listen(2) gets that backlog: the standard library
// always passes the system default (net.core.somaxconn).
func listen(ctx context.Context, address string, backlog int) (net.Listener, error) {
	if backlog <= 0 {
		return (&net.ListenConfig{}).Listen(ctx, "tcp", address)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	portNum, err := net.DefaultResolver.LookupPort(ctx, "tcp", port)
	if err != nil {
		return nil, err
	}
	if host == "" {
		// Like net.Listen: IPv6 and IPv4 both, when the system has IPv6.
		ln, err := listenSocket(syscall.AF_INET6, &syscall.SockaddrInet6{Port: portNum}, true, backlog)
		if err == nil || !errors.Is(err, syscall.EAFNOSUPPORT) {
			return ln, err
		}
		return listenSocket(syscall.AF_INET, &syscall.SockaddrInet4{Port: portNum}, false, backlog)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		ips, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if lerr != nil {
			return nil, lerr
		}
		ip = ips[0]
		for _, a := range ips {
			if a.Is4() || a.Is4In6() {
				ip = a // prefer IPv4, as net.Listen does
				break
			}
		}
	}
	if ip.Is4() || ip.Is4In6() {
		return listenSocket(syscall.AF_INET, &syscall.SockaddrInet4{Port: portNum, Addr: ip.Unmap().As4()}, false, backlog)
	}
	sa := &syscall.SockaddrInet6{Port: portNum, Addr: ip.As16()}
	if zone := ip.Zone(); zone != "" {
		ifi, err := net.InterfaceByName(zone)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return listenSocket(syscall.AF_INET6, sa, false, backlog)
}

func listenSocket(family int, sa syscall.Sockaddr, dualStack bool, backlog int) (net.Listener, error) {
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	closeFD := true
	defer func() {
		if closeFD {
			_ = syscall.Close(fd)
		}
	}()
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return nil, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	if dualStack {
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
			return nil, os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	if err := syscall.Listen(fd, backlog); err != nil {
		return nil, os.NewSyscallError("listen", err)
	}
	f := os.NewFile(uintptr(fd), "collector-listener")
	closeFD = false
	ln, err := net.FileListener(f) // duplicates the descriptor
	if cerr := f.Close(); err == nil && cerr != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("close socket: %w", cerr)
	}
	return ln, err
}

const backlogApplied = true
