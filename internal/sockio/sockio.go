// Package sockio reads and writes a connected TCP or Unix stream socket
// with raw system calls, and waits through Go's poller only when the
// socket is not ready.
//
// Why: net.Conn enters every read and write through syscall.Syscall, which
// tells the scheduler that the goroutine may block (entersyscall and
// exitsyscall). A socket of the net package is non-blocking and never
// blocks: a read or write that cannot go on returns EAGAIN, and the
// goroutine then waits in the poller, as it does here. A raw system call
// keeps the processor meanwhile; each one is short (it moves at most
// MaxRawWrite bytes), so the scheduler loses nothing it would have used.
// Measured: a small write and its read over loopback 2.1 → 1.8 µs
// (BenchmarkReadWrite); in the proxy, whose requests make four or five
// such calls, entersyscall and exitsyscall were 1.25 % of the CPU at 64
// connections and are gone, a gain within this machine's noise in an A/B
// (+0.8 %, docs/BENCHMARKS.md).
//
// A Socket reads and writes as net.Conn does: deadlines set on the
// connection apply, a read of nothing returns io.EOF, and errors are
// *net.OpError values as net.Conn's are. Unlike net.Conn, it is not for
// concurrent use in one direction: one Read and one Write may run at the
// same time, but not two Reads (or two Writes) at once, as with a
// bufio.Reader. A call with an empty buffer returns 0, nil at once, even
// on a closed connection.
//
// The socket must stay non-blocking (Open checks it): a raw read of a
// blocking socket would wait holding the processor, past any deadline.
// Nothing may switch it to blocking mode afterwards, as File does.
package sockio

import (
	"io"
	"net"
	"os"
	"syscall"
)

// MaxRawWrite bounds the bytes a Socket hands to one write system call (64
// KiB, a few tens of µs of copying into the send buffer), so that no single
// system call the scheduler does not know about is long. A larger Write
// makes several, and keeps the processor until the send buffer is full.
const MaxRawWrite = 64 << 10

// Socket is a socket read and written with raw system calls. Its zero
// value is not usable; see Open.
type Socket struct {
	nc net.Conn
	rc syscall.RawConn

	// During a Read: the caller's buffer, what the system call returned.
	rbuf   []byte
	rn     int
	rerrno syscall.Errno
	// During a Write: the caller's bytes, how many went, the error.
	wbuf   []byte
	wn     int
	werrno syscall.Errno
	wzero  bool // a write system call wrote nothing and said nothing

	readFn, writeFn func(fd uintptr) bool // method values, made once
}

// Open returns a Socket over nc when nc is a plain, non-blocking TCP or
// Unix stream socket on a system where raw reads and writes are supported
// (Linux); otherwise nil (TLS, pipes, datagram sockets, other systems), and
// the caller keeps using nc.
func Open(nc net.Conn) *Socket {
	if !supported {
		return nil
	}
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		if a := c.LocalAddr(); a == nil || a.Network() != "unix" {
			return nil // unixgram, unixpacket: a read of nothing is no EOF
		}
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil || !nonBlocking(rc) {
		return nil
	}
	s := &Socket{nc: nc, rc: rc}
	s.readFn, s.writeFn = s.read, s.write
	return s
}

// ReadWriter returns what to read and write nc through: a Socket over it
// where Open gives one, else nc itself.
func ReadWriter(nc net.Conn) io.ReadWriter {
	if s := Open(nc); s != nil {
		return s
	}
	return nc
}

// RawConn is the socket's syscall.RawConn: for code that waits and reads
// through it with ReadFD, which needs what Open checked (a stream socket,
// non-blocking).
func (s *Socket) RawConn() syscall.RawConn { return s.rc }

// Read reads into p what the socket holds, waiting (within the read
// deadline) until it holds something.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rbuf, s.rn, s.rerrno = p, 0, 0
	err := s.rc.Read(s.readFn)
	n, errno := s.rn, s.rerrno
	s.rbuf = nil
	switch {
	case err != nil: // a deadline, or the connection closed
		return 0, s.opError("read", err)
	case errno != 0:
		return 0, s.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// read is one attempt of Read (a syscall.RawConn read function): false
// when the socket has nothing yet.
func (s *Socket) read(fd uintptr) bool {
	for {
		n, errno := rawRead(fd, s.rbuf)
		switch errno {
		case 0:
			s.rn = n
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			s.rerrno = errno
		}
		return true
	}
}

// Write writes all of p, waiting (within the write deadline) while the
// send buffer is full. It returns how many bytes went, and an error if
// not all did.
func (s *Socket) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.wbuf, s.wn, s.werrno, s.wzero = p, 0, 0, false
	err := s.rc.Write(s.writeFn)
	n, errno := s.wn, s.werrno
	s.wbuf = nil
	switch {
	case err != nil:
		return n, s.opError("write", err)
	case errno != 0:
		return n, s.opError("write", os.NewSyscallError("write", errno))
	case s.wzero:
		return n, s.opError("write", io.ErrUnexpectedEOF)
	}
	return n, nil
}

// write is one attempt of Write: false when the send buffer is full
// before all is written.
func (s *Socket) write(fd uintptr) bool {
	for s.wn < len(s.wbuf) {
		n, errno := rawWrite(fd, s.wbuf[s.wn:min(len(s.wbuf), s.wn+MaxRawWrite)])
		switch errno {
		case 0:
			if n == 0 { // never for a socket; as internal/poll, no endless loop
				s.wzero = true
				return true
			}
			s.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.werrno = errno
			return true
		}
	}
	return true
}

// opError wraps err as net.Conn's Read and Write do. An error of the
// RawConn (a deadline, the connection closed) comes wrapped for its own
// operation ("raw-read"), which is taken off.
func (s *Socket) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	la := s.nc.LocalAddr()
	network := ""
	if la != nil {
		network = la.Network()
	}
	return &net.OpError{Op: op, Net: network, Source: la, Addr: s.nc.RemoteAddr(), Err: err}
}
