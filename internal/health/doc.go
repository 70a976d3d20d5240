// Package health decides whether each backend is up, from two sources, and
// records every change as an event.
//
// Active checks probe each backend on its own schedule: a TCP connect (plus
// a TLS handshake for https backends) or an HTTP GET whose status must fall
// in a range and whose body may have to contain a string. A backend is
// marked down only after Fall failed probes in a row and up again only
// after Rise good ones, so one lost probe never flips it. Probes of
// different backends are spread out: the first one falls at a random point
// of the first interval, and every later wait is the interval plus a random
// jitter. At startup InitialRound probes every backend once, concurrently,
// for a short bound: a first probe that fails proves the backend down at
// once, and a backend that has not answered by then stays up, so the first
// requests are never refused only because probes have not run.
//
// Passive checks (outlier detection) watch real traffic: the proxy reports
// the outcome of every attempt to Observe, which costs a few atomic
// operations. A run of connect failures, resets or timeouts (and, if
// configured, of 5xx responses) ejects the backend for a cooldown that
// doubles on repeated ejections. It comes back when the cooldown is over
// and, if active checks are on, when its probes have succeeded Rise times
// since the ejection.
//
// The backend's health flag (upstream.Backend.Healthy) is up when the
// active verdict is up and no ejection is in force. Each change of it is an
// Event: logged once (Warn when down, Info when up) with its reason,
// counted, kept among the Recent ones and passed to the onEvent hook; Status
// shows each backend's last reason and counters to the admin API.
//
// This package only marks backends down. What to do when every backend of
// a pool is down is the proxy's decision: it tries them anyway ("panic
// mode", as Envoy does) rather than fail every request, so a checker that is
// wrong about all backends cannot take the service down.
package health
