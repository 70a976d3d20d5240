package server

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/lbproject/load_balancer/internal/balancer"
	"github.com/lbproject/load_balancer/internal/config"
	"github.com/lbproject/load_balancer/internal/health"
	"github.com/lbproject/load_balancer/internal/proxy"
	"github.com/lbproject/load_balancer/internal/upstream"
)

// compiled is everything a configuration turns into, built completely
// before anything is swapped in.
type compiled struct {
	cfg     *config.Config
	proxy   *proxy.Snapshot
	members map[upstream.Address]*registered
	targets []health.Target // active health checks, one per backend
	drain   map[*upstream.Backend]bool
}

// compile turns a validated configuration into a snapshot, reusing the
// registry's backends. It changes nothing: a failure leaves the running
// configuration untouched.
func compile(cfg *config.Config, reg *registry) (*compiled, error) {
	pool := &upstream.Pool{Members: make([]upstream.Member, 0, len(cfg.Backends))}
	members := make(map[upstream.Address]*registered, len(cfg.Backends))
	targets := make([]health.Target, 0, len(cfg.Backends))
	drain := make(map[*upstream.Backend]bool, len(cfg.Backends))
	for _, b := range cfg.Backends {
		r, err := reg.resolve(cfg, b, members)
		if err != nil {
			return nil, err
		}
		members[r.backend.Address()] = r
		pool.Members = append(pool.Members, upstream.Member{Backend: r.backend, Weight: b.EffectiveWeight()})
		targets = append(targets, health.Target{Backend: r.backend, Check: cfg.HealthCheckFor(b), TLS: r.opts.TLS})
		drain[r.backend] = b.Drain
	}
	picker, err := balancer.New(cfg.Strategy, pool)
	if err != nil {
		return nil, fmt.Errorf("%s: strategy: %w", cfg.Source, err)
	}
	trusted, err := parseTrusted(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("%s: trusted_proxies: %w", cfg.Source, err)
	}
	snap := &proxy.Snapshot{
		Pool:           pool,
		Picker:         picker,
		Attempts:       cfg.Retries.Attempts,
		MaxURIBytes:    cfg.Limits.MaxURIBytes,
		ClientBodyIdle: cfg.Timeouts.ClientBodyIdle.D(),
		TrustedProxies: trusted,
		Via:            cfg.Via,
		AccessLog:      cfg.Log.AccessEnabled(),
	}
	if cfg.Strategy == balancer.Sticky {
		secret := []byte(cfg.Sticky.Secret)
		if len(secret) == 0 {
			secret = balancer.DeriveSecret(cfg.Sticky.CookieName)
		}
		snap.Sticky = balancer.NewStickyCookies(pool, cfg.Sticky.CookieName, secret, time.Duration(cfg.Sticky.MaxAge))
	}
	return &compiled{cfg: cfg, proxy: snap, members: members, targets: targets, drain: drain}, nil
}

// parseTrusted parses addresses and CIDRs; a bare address is a /32 or /128.
func parseTrusted(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
