package proxy

import (
	"io"
	"net/http"
	"strings"
	"time"
)

// serveUpgrade completes a protocol switch (RFC 9110 §7.8), typically a
// WebSocket: it sends the backend's 101 response to the client, then copies
// bytes both ways until either side closes. It returns the status to log.
func (h *Handler) serveUpgrade(w http.ResponseWriter, res *http.Response, requested string, ex *exchange) int {
	backConn, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		return upgradeFailed(w)
	}
	defer backConn.Close()
	// Counted before the hijack: from the hijack on, http.Server.Shutdown
	// no longer sees this connection, and a shutdown must still wait for it.
	tunnel := h.tunnels.begin()
	defer h.tunnels.end(tunnel)
	if got := upgradeType(res.Header); !strings.EqualFold(got, requested) {
		// A backend may only switch to the protocol the client asked for.
		return upgradeFailed(w)
	}
	clientConn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return upgradeFailed(w)
	}
	defer clientConn.Close()
	// The server's read deadlines belonged to the HTTP exchange; a tunnel
	// may be quiet for as long as both ends like.
	_ = clientConn.SetDeadline(time.Time{})

	upgrade := res.Header.Get("Upgrade")
	removeHopByHopHeaders(res.Header)
	res.Header["Connection"] = []string{"Upgrade"}
	res.Header["Upgrade"] = []string{upgrade}
	res.Body = nil // res.Write must not copy the tunnel
	if err := res.Write(brw); err != nil {
		return http.StatusSwitchingProtocols
	}
	if err := brw.Flush(); err != nil {
		return http.StatusSwitchingProtocols
	}

	h.tunnels.attach(tunnel, clientConn, backConn)
	errc := make(chan error, 2)
	// brw.Reader may hold bytes the client sent right after its request.
	go func() { _, err := io.Copy(backConn, brw); errc <- err }()
	go func() { _, err := io.Copy(clientConn, backConn); errc <- err }()
	<-errc
	// One direction ended: close both so the other copy ends too, and wait
	// for it, so no goroutine outlives the tunnel.
	clientConn.Close()
	backConn.Close()
	<-errc
	return http.StatusSwitchingProtocols
}

// upgradeFailed answers 502 to an upgrade the balancer cannot complete,
// without the backend's 101 fields, which may already be in w's header.
func upgradeFailed(w http.ResponseWriter) int {
	clear(w.Header())
	writeError(w, http.StatusBadGateway)
	return http.StatusBadGateway
}
