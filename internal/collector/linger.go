package collector

import (
	"io"
	"net"
	"sync"
	"time"
)

// lingerTimeout is how long a closed connection keeps reading (and
// discarding) what the client still sends.
const lingerTimeout = 500 * time.Millisecond

// lingerListener hands out connections that close gracefully: Close sends
// FIN and drains the client's data for up to lingerTimeout before the
// socket is closed. Closing a socket with unread data makes the kernel send
// RST, which can destroy the response just written: a client still sending
// a body it was refused (413, 401, 503) would see "connection reset"
// instead of the answer, and retry. net/http does the same (nginx calls it
// lingering_close).
//
// It also keeps the set of open connections, so that a shutdown that runs
// out of time can cut them off (closeAll).
type lingerListener struct {
	net.Listener

	// accepting is closed at the first Accept: the server has registered
	// the listener by then, so its shutdown will close it.
	accepting chan struct{}
	once      sync.Once

	mu    sync.Mutex
	conns map[*lingerConn]struct{}
}

func newLingerListener(ln net.Listener) *lingerListener {
	return &lingerListener{Listener: ln, accepting: make(chan struct{}), conns: map[*lingerConn]struct{}{}}
}

func (l *lingerListener) Accept() (net.Conn, error) {
	l.once.Do(func() { close(l.accepting) })
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	lc := &lingerConn{TCPConn: tc, l: l}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	return lc, nil
}

// closeAll closes every open connection at once, without lingering.
func (l *lingerListener) closeAll() {
	l.mu.Lock()
	conns := l.conns
	l.conns = map[*lingerConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		_ = c.TCPConn.Close()
	}
}

func (l *lingerListener) forget(c *lingerConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

type lingerConn struct {
	*net.TCPConn
	l *lingerListener
}

// Close shuts down writing at once (the client sees the end of the
// response) and closes the socket after the client has closed its side or
// lingerTimeout has passed, in a goroutine of its own.
func (c *lingerConn) Close() error {
	c.l.forget(c)
	if err := c.CloseWrite(); err != nil {
		return c.TCPConn.Close()
	}
	if err := c.SetReadDeadline(time.Now().Add(lingerTimeout)); err != nil {
		return c.TCPConn.Close()
	}
	go func() {
		_, _ = io.Copy(io.Discard, c.TCPConn)
		_ = c.TCPConn.Close()
	}()
	return nil
}
