//go:build linux

// Command evloop is a measuring spike, not part of the balancer: the least
// a Go HTTP/1.1 reverse proxy can spend per request on Linux, to tell which
// of issue 5's targets any Go design could meet on a machine.
//
// One goroutine runs an edge-triggered epoll loop over raw sockets: no
// goroutine per connection, no read that finds nothing (a socket is read
// until a short read, then left until epoll reports new bytes), and Go's
// poller used only to sleep when nothing is ready. It forwards request
// heads round-robin to keep-alive backend connections with an
// X-Forwarded-For line added, and streams responses back as they come
// (framed by Content-Length or chunked).
//
// Out of scope, on purpose: request bodies, HTTP/2, TLS, timeouts, retries,
// health checks, header rules, metrics, logs, and any validation of what it
// forwards. A response it cannot carry (no length, or a head over 4 KiB)
// closes the client connection. Used by bench/ceiling.sh; the results are
// in docs/BENCHMARKS.md ("The ceiling of a Go proxy here").
//
// It takes the balancer's standard benchmark arguments, so that
// ../shared/bench can start it like the balancer:
//
//	evloop --host 127.0.0.1 --port 8080 -c backends.yaml -s round-robin
//
// EVLOOP_SPIN (a duration, such as 2.5us; default none) adds a busy wait
// of that long to each request, so that the loop's latency can be compared
// with a proxy's at the same CPU per request ("Where the tail comes from"
// in docs/BENCHMARKS.md). It is an environment variable because the
// harness passes only the standard arguments.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/lbproject/load_balancer/internal/config"
)

const bufSize = 4096

// epollET is EPOLLET, which package syscall declares as a negative int.
const epollET = 1 << 31

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8080, "port to listen on")
	cfgPath := flag.String("c", "config.yaml", "the balancer's YAML configuration (only its backends are read)")
	strategy := flag.String("s", "round-robin", "balancing strategy (only round-robin)")
	flag.Parse()
	if *strategy != "round-robin" {
		fmt.Fprintf(os.Stderr, "evloop: -s %s: only round-robin\n", *strategy)
		os.Exit(2)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "evloop:", err)
		os.Exit(2)
	}
	var backends []netip.AddrPort
	for _, b := range cfg.Backends {
		a, err := net.ResolveTCPAddr("tcp4", net.JoinHostPort(b.Host, strconv.Itoa(b.Port)))
		if err != nil {
			fmt.Fprintln(os.Stderr, "evloop:", err)
			os.Exit(2)
		}
		backends = append(backends, netip.AddrPortFrom(a.AddrPort().Addr().Unmap(), a.AddrPort().Port()))
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "evloop:", err)
		os.Exit(2)
	}
	p, err := newProxy(ln.(*net.TCPListener), backends)
	if err != nil {
		log.Fatal(err)
	}
	if p.spin, err = parseSpin(os.Getenv("EVLOOP_SPIN")); err != nil {
		fmt.Fprintln(os.Stderr, "evloop:", err)
		os.Exit(2)
	}
	log.Fatal(p.serve())
}

// parseSpin reads EVLOOP_SPIN: empty for none, else a duration of zero or
// more.
func parseSpin(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = errors.New("negative")
	}
	if err != nil {
		return 0, fmt.Errorf("EVLOOP_SPIN=%q: want a duration such as 2.5us: %v", v, err)
	}
	return d, nil
}

type side uint8

const (
	client side = iota
	backend
)

// socket is a client or backend connection. A client's peer is its backend
// connection while a request is out (-1 otherwise); a backend connection's
// is the client it answers or last answered.
type socket struct {
	side side
	fd   int
	buf  []byte
	n    int // bytes in buf
	peer int
	xff  []byte // client: "X-Forwarded-For: <address>"

	// A backend connection's response in progress.
	be     int  // the index of its backend
	inBody bool // its head has been read
	bodyAt int  // where the body starts in buf
	left   int  // body bytes still to come, or -1 if chunked
	chunks chunkScanner
}

type proxy struct {
	epfd, lfd int
	stop      [2]int // a pipe whose read end wakes serve to return
	lnFile    *os.File
	epFile    *os.File        // the epoll instance, for Go's poller
	epRaw     syscall.RawConn // to wait for it
	backends  []syscall.SockaddrInet4
	idle      [][]int // per backend, idle keep-alive connections
	next      int     // round-robin position
	sockets   []*socket
	out       []byte
	spin      time.Duration // busy wait added to each request (EVLOOP_SPIN)
}

// newProxy takes the listener's socket out of Go's poller (a duplicate,
// switched to non-blocking) and prepares the epoll instance.
func newProxy(ln *net.TCPListener, backends []netip.AddrPort) (*proxy, error) {
	if len(backends) == 0 {
		return nil, errors.New("evloop: no backends")
	}
	p := &proxy{out: make([]byte, 0, bufSize+64), idle: make([][]int, len(backends))}
	for _, b := range backends {
		if !b.Addr().Is4() {
			return nil, fmt.Errorf("evloop: %s: IPv4 only", b)
		}
		p.backends = append(p.backends, syscall.SockaddrInet4{Port: int(b.Port()), Addr: b.Addr().As4()})
	}
	f, err := ln.File()
	ln.Close()
	if err != nil {
		return nil, err
	}
	p.lnFile = f
	p.lfd = int(f.Fd())
	if err := syscall.SetNonblock(p.lfd, true); err != nil {
		return nil, err
	}
	if p.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(p.epfd, true); err != nil {
		return nil, err
	}
	p.epFile = os.NewFile(uintptr(p.epfd), "evloop-epoll")
	if p.epRaw, err = p.epFile.SyscallConn(); err != nil {
		return nil, err
	}
	if err := syscall.Pipe2(p.stop[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, err
	}
	for _, fd := range []int{p.lfd, p.stop[0]} {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// close makes serve return and closes every descriptor.
func (p *proxy) close() { syscall.Write(p.stop[1], []byte{0}) }

// serve runs the loop until close. It never blocks in epoll_wait itself:
// a goroutine blocked in a system call has its P taken by sysmon, and one
// that never goes through the scheduler looks to sysmon like a goroutine
// that never stops; either way sysmon then wakes every few hundred
// microseconds and the thread is switched out (0.15 context switches per
// request in a first version). So it asks epoll without waiting, waits for
// the epoll instance through Go's poller when nothing is ready, and yields
// to the scheduler once per round when busy.
func (p *proxy) serve() error {
	defer p.release()
	events := make([]syscall.EpollEvent, 256)
	var n int
	var err error
	poll := func(uintptr) bool {
		n, err = syscall.EpollWait(p.epfd, events, 0)
		return n != 0 || (err != nil && err != syscall.EINTR)
	}
	for {
		if poll(0) {
			runtime.Gosched()
		} else if rerr := p.epRaw.Read(poll); rerr != nil {
			return rerr
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range events[:n] {
			switch fd := int(e.Fd); {
			case fd == p.stop[0]:
				return nil
			case fd == p.lfd:
				p.accept()
			default:
				if s := p.socket(fd); s == nil {
					continue
				} else if s.side == client {
					p.onClient(s)
				} else {
					p.onBackend(s)
				}
			}
		}
	}
}

func (p *proxy) release() {
	for _, s := range p.sockets {
		if s != nil {
			syscall.Close(s.fd)
		}
	}
	p.lnFile.Close()
	p.epFile.Close()
	syscall.Close(p.stop[0])
	syscall.Close(p.stop[1])
}

func (p *proxy) socket(fd int) *socket {
	if fd < len(p.sockets) {
		return p.sockets[fd]
	}
	return nil
}

// add registers fd with the epoll instance, edge-triggered, for its life.
func (p *proxy) add(s *socket) error {
	for s.fd >= len(p.sockets) {
		p.sockets = append(p.sockets, nil)
	}
	p.sockets[s.fd] = s
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(s.fd)}
	return syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, s.fd, &ev)
}

// drop closes s and, for a client with a request out, its backend
// connection (whose response will not be read).
func (p *proxy) drop(s *socket) {
	if p.socket(s.fd) != s {
		return
	}
	p.sockets[s.fd] = nil
	syscall.Close(s.fd)
	if s.side == client && s.peer >= 0 {
		if b := p.socket(s.peer); b != nil {
			p.drop(b)
		}
	}
	if s.side == backend {
		idle := p.idle[s.be]
		for i, fd := range idle {
			if fd == s.fd {
				p.idle[s.be] = append(idle[:i], idle[i+1:]...)
				break
			}
		}
	}
}

func (p *proxy) accept() {
	for {
		fd, sa, err := syscall.Accept4(p.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		xff := "X-Forwarded-For: "
		if sa4, ok := sa.(*syscall.SockaddrInet4); ok {
			xff += netip.AddrFrom4(sa4.Addr).String()
		}
		s := &socket{side: client, fd: fd, buf: make([]byte, bufSize), peer: -1, xff: []byte(xff)}
		if err := p.add(s); err != nil {
			p.drop(s)
		}
	}
}

// backendConn returns an idle connection to the next backend, or a new one
// (connected blocking: new connections are made while warming up only).
func (p *proxy) backendConn() *socket {
	i := p.next % len(p.backends)
	p.next++
	if n := len(p.idle[i]); n > 0 {
		fd := p.idle[i][n-1]
		p.idle[i] = p.idle[i][:n-1]
		return p.socket(fd)
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if err := syscall.Connect(fd, &p.backends[i]); err != nil {
		syscall.Close(fd)
		return nil
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	s := &socket{side: backend, fd: fd, buf: make([]byte, bufSize), peer: -1, be: i}
	if err := syscall.SetNonblock(fd, true); err != nil || p.add(s) != nil {
		p.drop(s)
		return nil
	}
	return s
}

// fill reads until the socket is drained (a short read or EAGAIN) or the
// buffer is full. ok is false when the connection is gone; drained is false
// when the buffer filled up and bytes may be left (epoll will not report
// them again: the socket is edge-triggered).
func fill(s *socket) (ok, drained bool) {
	for s.n < len(s.buf) {
		n, err := syscall.Read(s.fd, s.buf[s.n:])
		if err == syscall.EAGAIN {
			return true, true
		}
		if err != nil || n == 0 {
			return false, true
		}
		s.n += n
		if s.n < len(s.buf) {
			return true, true
		}
	}
	return true, false
}

var headEnd = []byte("\r\n\r\n")

func (p *proxy) onClient(c *socket) {
	if ok, _ := fill(c); !ok {
		p.drop(c)
		return
	}
	if c.peer >= 0 {
		return // pipelined: sent once the response is back
	}
	end := bytes.Index(c.buf[:c.n], headEnd)
	if end < 0 {
		if c.n == len(c.buf) {
			p.drop(c)
		}
		return
	}
	if p.spin > 0 { // (without it, no clock read: the loop measures a ceiling)
		for start := time.Now(); time.Since(start) < p.spin; {
		}
	}
	b := p.backendConn()
	if b == nil {
		p.drop(c)
		return
	}
	p.out = append(p.out[:0], c.buf[:end+2]...)
	p.out = append(p.out, c.xff...)
	p.out = append(p.out, "\r\n\r\n"...)
	if !writeAll(b.fd, p.out) {
		p.drop(b)
		p.drop(c)
		return
	}
	c.n = copy(c.buf, c.buf[end+4:c.n])
	c.peer, b.peer = b.fd, c.fd
}

func (p *proxy) onBackend(b *socket) {
	c := p.socket(b.peer)
	if c != nil && c.peer != b.fd {
		c = nil // idle: b.peer is a client it answered before
	}
	for {
		ok, drained := fill(b)
		if !ok || (c == nil && b.n > 0) { // gone, or bytes nobody asked for
			p.fail(b, c)
			return
		}
		if c == nil || b.n == 0 {
			return
		}
		if !b.inBody {
			end := bytes.Index(b.buf[:b.n], headEnd)
			if end < 0 {
				if b.n == len(b.buf) {
					p.fail(b, c)
				}
				return
			}
			b.inBody, b.bodyAt = true, end+4
			if b.left = contentLength(b.buf[:end+2]); b.left < 0 {
				if !isChunked(b.buf[:end+2]) {
					p.fail(b, c) // no length: out of scope
					return
				}
				b.chunks = chunkScanner{}
			}
		}
		// Forward what is here, up to the end of the response.
		body := b.buf[b.bodyAt:b.n]
		done := false
		if b.left >= 0 {
			if len(body) >= b.left {
				body, done = body[:b.left], true
			}
			b.left -= len(body)
		} else if i := b.chunks.end(body); i >= 0 {
			body, done = body[:i], true
		}
		msg := b.buf[:b.bodyAt+len(body)]
		if done && len(msg) != b.n {
			p.fail(b, c) // bytes after the response: out of step
			return
		}
		b.n, b.bodyAt = 0, 0
		if !writeAll(c.fd, msg) {
			p.fail(b, c)
			return
		}
		if done {
			b.inBody = false
			p.idle[b.be] = append(p.idle[b.be], b.fd)
			c.peer = -1
			if c.n > 0 {
				p.onClient(c) // a pipelined request is waiting
			}
			return
		}
		if drained {
			return
		}
	}
}

// fail closes a backend connection and the client it was answering.
func (p *proxy) fail(b, c *socket) {
	p.drop(b)
	if c != nil {
		c.peer = -1
		p.drop(c)
	}
}

// writeAll writes msg to a non-blocking socket. A peer that does not take
// it at once gets it blocking (the loop waits for it): simpler than waiting
// for EPOLLOUT, and never the case in the measured scenarios, whose
// messages fit the socket's buffer.
func writeAll(fd int, msg []byte) bool {
	for len(msg) > 0 {
		n, err := syscall.Write(fd, msg)
		if err == syscall.EAGAIN {
			syscall.SetNonblock(fd, false)
			n, err = syscall.Write(fd, msg)
			syscall.SetNonblock(fd, true)
		}
		if err != nil {
			return false
		}
		msg = msg[n:]
	}
	return true
}

// field returns the trimmed value of the head's first field named name
// (any case), and whether there is one.
func field(head []byte, name string) ([]byte, bool) {
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(k, []byte(name)) {
			return bytes.TrimSpace(v), true
		}
	}
	return nil, false
}

// contentLength returns the value of the head's Content-Length field, or
// -1 if there is none or it is not a number.
func contentLength(head []byte) int {
	value, ok := field(head, "Content-Length")
	if !ok || len(value) == 0 || len(value) > 9 {
		return -1
	}
	n := 0
	for _, ch := range value {
		if ch < '0' || ch > '9' {
			return -1
		}
		n = n*10 + int(ch-'0')
	}
	return n
}

// isChunked reports whether a response head says
// "Transfer-Encoding: chunked" (the spike knows no other coding).
func isChunked(head []byte) bool {
	value, ok := field(head, "Transfer-Encoding")
	return ok && bytes.EqualFold(value, []byte("chunked"))
}

// chunkScanner finds the end of a chunked body (RFC 9112 §7.1) in the
// pieces it is given in turn, without keeping them.
type chunkScanner struct {
	state int // one of the chunk* constants
	size  int // the chunk size being read, then the data bytes left
}

const (
	chunkSize        = iota // hex digits of a chunk size
	chunkExt                // a chunk extension, up to the line's end
	chunkData               // size bytes of data
	chunkDataEnd            // the CRLF after the data
	chunkTrailer            // the start of a trailer line, or the final CRLF
	chunkTrailerLine        // the rest of a trailer line
)

// end returns the index just after the body's last byte in b, or -1 if the
// body goes on after b.
func (s *chunkScanner) end(b []byte) int {
	for i := 0; i < len(b); i++ {
		ch := b[i]
		switch s.state {
		case chunkSize, chunkExt:
			switch {
			case ch == '\n':
				if s.size == 0 {
					s.state = chunkTrailer
				} else {
					s.state = chunkData
				}
			case s.state == chunkSize && (ch == ';' || ch == ' ' || ch == '\t'):
				s.state = chunkExt // an extension, or whitespace before one
			case s.state == chunkSize && ch != '\r':
				s.size = s.size<<4 | int(unhex(ch))
			}
		case chunkData:
			n := min(s.size, len(b)-i)
			s.size -= n
			i += n - 1
			if s.size == 0 {
				s.state = chunkDataEnd
			}
		case chunkDataEnd:
			if ch == '\n' {
				s.state = chunkSize
			}
		case chunkTrailer:
			switch ch {
			case '\n':
				return i + 1
			case '\r':
			default:
				s.state = chunkTrailerLine
			}
		case chunkTrailerLine:
			if ch == '\n' {
				s.state = chunkTrailer
			}
		}
	}
	return -1
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}
