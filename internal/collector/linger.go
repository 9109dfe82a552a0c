package collector

import (
	"io"
	"net"
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
type lingerListener struct{ net.Listener }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return &lingerConn{TCPConn: tc}, nil
	}
	return c, nil
}

type lingerConn struct{ *net.TCPConn }

// Close shuts down writing at once (the client sees the end of the
// response) and closes the socket after the client has closed its side or
// lingerTimeout has passed, in a goroutine of its own.
func (c *lingerConn) Close() error {
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
