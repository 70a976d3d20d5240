package balancer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lbproject/load_balancer/internal/upstream"
)

// stickyValueBytes is how much of the HMAC-SHA256 a cookie value keeps:
// 128 bits, 32 hex digits. Enough that a value cannot be guessed or collide,
// short enough for a cookie sent on every request.
const stickyValueBytes = 16

// StickyCookies keeps a client on the backend that served it first, by a
// cookie that names that backend. It sits in front of a Picker: the proxy
// asks Lookup for the cookie's backend, and when there is none (no cookie,
// an unknown or forged value, a backend gone from the pool) or the Filter
// rejects it (down, draining, already tried), it picks with the fallback
// picker and sends Cookie for the backend it got.
//
// A cookie value is HMAC-SHA256(secret, backend address), truncated to 128
// bits and hex encoded, where the address is the backend's key such as
// "http://10.0.0.1:9001". It never depends on the backend's position in the
// list, so reordering, adding or removing other backends moves no session,
// and every instance with the same secret (and the same instance after a
// restart) maps a value to the same backend. Without the secret a client
// cannot turn an address of its choosing into a value, and a value does not
// reveal the address.
//
// Everything the request path needs is computed at construction: Lookup
// allocates nothing and Cookie returns a precomputed string. A
// StickyCookies is immutable and safe for concurrent use.
type StickyCookies struct {
	name    string
	secret  []byte
	attrs   string                                  // "; Path=/; HttpOnly; SameSite=Lax[; Max-Age=N]"
	byValue map[string]*upstream.Backend            // cookie value → member
	members map[*upstream.Backend]stickyMemberValue // member → value and Set-Cookie strings
}

// stickyMemberValue is what StickyCookies precomputes for one member.
type stickyMemberValue struct {
	value        string // the cookie value
	setCookie    string // Set-Cookie header value without Secure
	setCookieTLS string // the same with Secure
}

// NewStickyCookies returns the sticky cookie handling for pool's members
// with a positive weight (a weight-0 member takes no traffic, so its cookie
// is treated as unknown and the session moves).
//
// cookieName must be a valid cookie name (an HTTP token); the config checks
// it. secret keys the HMAC; when it is empty, DeriveSecret(cookieName) is
// used. maxAge > 0 makes the cookie persistent for that long (rounded up to
// whole seconds); 0 or less makes it a session cookie, dropped when the
// browser closes.
func NewStickyCookies(pool *upstream.Pool, cookieName string, secret []byte, maxAge time.Duration) *StickyCookies {
	if len(secret) == 0 {
		secret = DeriveSecret(cookieName)
	}
	attrs := "; Path=/; HttpOnly; SameSite=Lax"
	if maxAge > 0 {
		secs := int64((maxAge + time.Second - 1) / time.Second)
		attrs += "; Max-Age=" + strconv.FormatInt(secs, 10)
	}
	s := &StickyCookies{
		name:    cookieName,
		secret:  append([]byte(nil), secret...),
		attrs:   attrs,
		byValue: make(map[string]*upstream.Backend),
		members: make(map[*upstream.Backend]stickyMemberValue),
	}
	backends, _ := candidates(pool)
	for _, b := range backends {
		v := s.memberValue(b)
		s.byValue[v.value] = b
		s.members[b] = v
	}
	return s
}

// DeriveSecret returns the secret used when none is configured: SHA-256 of a
// fixed label and the cookie name. It is the same on every instance and
// after every restart, so sessions survive both without configuration.
// Anyone who knows the derivation can compute the value for a known backend
// address, though (nothing worse: the address must still be a pool member);
// operators who want values that cannot be predicted set a secret.
func DeriveSecret(cookieName string) []byte {
	sum := sha256.Sum256([]byte("lbproject/load_balancer sticky cookie secret v1\x00" + cookieName))
	return sum[:]
}

// Name returns the cookie name.
func (s *StickyCookies) Name() string { return s.name }

// Value returns the cookie value that names b. It is precomputed for members;
// for other backends it is computed (and allocated) on each call.
func (s *StickyCookies) Value(b *upstream.Backend) string {
	if v, ok := s.members[b]; ok {
		return v.value
	}
	return s.value(b)
}

// Cookie returns the Set-Cookie header value that pins a client to b:
// "NAME=VALUE; Path=/; HttpOnly; SameSite=Lax", then "; Max-Age=N" when a
// max age is set and "; Secure" when secure (the client connection uses TLS;
// a Secure cookie would not come back over plain HTTP). For members it is a
// precomputed string, so the request path does not allocate.
func (s *StickyCookies) Cookie(b *upstream.Backend, secure bool) string {
	v, ok := s.members[b]
	if !ok {
		v = s.memberValue(b)
	}
	if secure {
		return v.setCookieTLS
	}
	return v.setCookie
}

// Lookup returns the member of the pool that req's cookie names, or nil when
// the request has no such cookie or its value names no member (a forged or
// stale value, or one for a backend that has left the pool). When several
// cookies carry the name (say, set for different paths), the first that
// names a member wins. Whether the backend may take the request is the
// caller's question (Filter.Allows).
//
// Lookup reads the Cookie header fields itself instead of calling
// req.Cookie, which parses every cookie into a new value: it allocates
// nothing.
func (s *StickyCookies) Lookup(req *http.Request) *upstream.Backend {
	if req == nil || len(s.byValue) == 0 {
		return nil
	}
	for _, line := range req.Header["Cookie"] {
		for len(line) > 0 {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, val, ok := strings.Cut(strings.Trim(part, " \t"), "=")
			if !ok || name != s.name {
				continue
			}
			// RFC 6265 allows a value in double quotes; net/http drops them.
			if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
				val = val[1 : len(val)-1]
			}
			if b := s.byValue[val]; b != nil {
				return b
			}
		}
	}
	return nil
}

// memberValue computes the value and Set-Cookie strings for b.
func (s *StickyCookies) memberValue(b *upstream.Backend) stickyMemberValue {
	v := s.value(b)
	c := s.name + "=" + v + s.attrs
	return stickyMemberValue{value: v, setCookie: c, setCookieTLS: c + "; Secure"}
}

// value computes the cookie value for b: the truncated, hex-encoded
// HMAC-SHA256 of b's address under the secret.
func (s *StickyCookies) value(b *upstream.Backend) string {
	mac := hmac.New(sha256.New, s.secret)
	mac.Write([]byte(b.String()))
	return hex.EncodeToString(mac.Sum(nil)[:stickyValueBytes])
}
