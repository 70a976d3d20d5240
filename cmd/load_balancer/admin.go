package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/lbproject/load_balancer/internal/admin"
	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/server"
	"github.com/lbproject/load_balancer/internal/telemetry"
)

// adminShutdownBound is how long the admin listener waits for calls in
// progress when the balancer stops (after the proxy has drained).
const adminShutdownBound = 2 * time.Second

// newMetrics returns the request metrics, or nil when the admin listener
// is off: nothing could read them, so requests do not pay for them.
func newMetrics(cfg *config.Config) *telemetry.Metrics {
	if cfg.Admin.Off() {
		return nil
	}
	return telemetry.NewMetrics(telemetry.MetricsOptions{Version: buildVersion()})
}

// serverOptions wires the metrics into the server's hooks.
func serverOptions(m *telemetry.Metrics) server.Options {
	if m == nil {
		return server.Options{}
	}
	return server.Options{
		Metrics:       m,
		OnHealthEvent: m.HealthEvent,
		OnReload:      func(r server.Reload) { m.ConfigReloaded(r.OK, r.Time) },
	}
}

// startAdmin binds and serves the admin listener unless admin.addr is
// "off", and returns the function that stops it. If the default address is
// taken (say, by another balancer on the machine) the error is logged and
// the balancer runs without it; an address asked for must bind.
func startAdmin(log *slog.Logger, cfg *config.Config, srv *server.Server, m *telemetry.Metrics, reload func() server.Reload) (stop func(), err error) {
	addr := cfg.Admin.Addr
	if cfg.Admin.Off() || m == nil {
		log.Info("admin listener off")
		return func() {}, nil
	}
	m.SetSource(srv)
	m.ConfigLoaded(time.Now())
	token := ""
	if cfg.Admin.TokenFile != "" {
		if token, err = admin.ReadToken(cfg.Admin.TokenFile); err != nil {
			return nil, err
		}
	}
	a := admin.New(admin.Options{
		Server: srv, Metrics: m, Reload: reload, Token: token, Version: buildVersion(), Log: log,
	})
	if err := a.Listen(addr); err != nil {
		if addr == config.DefaultAdminAddr {
			log.Error("admin listener not started: its default address is taken; set --admin-addr (or admin.addr) to another address, or off",
				"addr", addr, "error", err.Error())
			return func() {}, nil
		}
		return nil, err
	}
	if token == "" && !admin.Loopback(addr) {
		log.Warn("admin listener reachable beyond loopback without a token: anyone who reaches it can drain backends and reload the config; set --admin-token-file",
			"addr", addr)
	}
	log.Info("admin listening", "addr", a.Addr().String(), "token", token != "")

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Serve(); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("admin listener failed", "error", err.Error())
		}
	})
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), adminShutdownBound)
		defer cancel()
		a.Shutdown(ctx)
		wg.Wait()
	}, nil
}
