package e2e

// Requests that must be rejected, and request-smuggling attempts. Every
// attack carries a complete request ("GET /smuggled") inside what one
// reading of the message calls its body, and is followed on the same
// connection by a pipelined "GET /follow-up". The backend records what it
// receives: it must never see /smuggled, and it must see exactly the
// requests the balancer answered for.

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	smuggled = "GET /smuggled HTTP/1.1\r\nHost: lb.test\r\n\r\n"
	followUp = "GET /follow-up HTTP/1.1\r\nHost: lb.test\r\nConnection: close\r\n\r\n"
)

// smuggleCase is one attack and what may come of it.
type smuggleCase struct {
	name string
	raw  string // the attack; followUp is appended
	// first lists the acceptable statuses of the first response.
	first []int
	// served is what the backend must have received when the first
	// response is a 2xx (the attack handled in its one safe reading);
	// for a rejection the backend must receive nothing of the attack.
	served []string
	// closeAfter: after handling the attack the connection must be closed
	// (the follow-up not served), because no reading of where the next
	// request starts can be trusted.
	closeAfter bool
}

func TestProtocolRequestSmuggling(t *testing.T) {
	t.Parallel()
	be := newRecordingBackend(t, nil)
	lb := startProtoBalancer(t, "", be.Addr)

	sl := strconv.Itoa(len(smuggled))
	// A chunked body whose CL reading differs: CL covers the smuggled
	// request, chunked ends before it.
	clte := "0\r\n\r\n" + smuggled
	// A chunked body containing the smuggled request; CL covers only "XX\r\n".
	tecl := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled)

	cases := []smuggleCase{
		{
			name:  "conflicting Content-Length headers",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 0\r\nContent-Length: " + sl + "\r\n\r\n" + smuggled,
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "conflicting Content-Length list",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 0, " + sl + "\r\n\r\n" + smuggled,
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "negative Content-Length",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nContent-Length: -" + sl + "\r\n\r\n" + smuggled,
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "signed Content-Length",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nContent-Length: +" + sl + "\r\n\r\n" + smuggled,
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "hex Content-Length",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 0x" + strconv.FormatInt(int64(len(smuggled)), 16) + "\r\n\r\n" + smuggled,
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "space before colon in Content-Length",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nContent-Length : " + sl + "\r\n\r\n" + smuggled,
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "CL.TE: Content-Length and Transfer-Encoding chunked",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nContent-Length: " + strconv.Itoa(len(clte)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + clte,
			first: []int{200, 400}, served: []string{"/attack"}, closeAfter: true,
		},
		{
			name:  "TE.CL: Transfer-Encoding chunked and Content-Length",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + tecl,
			first: []int{200, 400}, served: []string{"/attack"}, closeAfter: true,
		},
		{
			name:  "Transfer-Encoding gzip, chunked",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + tecl,
			first: []int{400, 501}, closeAfter: true,
		},
		{
			name:  "Transfer-Encoding identity with Content-Length",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: identity\r\nContent-Length: " + sl + "\r\n\r\n" + smuggled,
			first: []int{400, 501}, closeAfter: true,
		},
		{
			name:  "Transfer-Encoding chunked twice",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" + tecl,
			first: []int{400, 501}, closeAfter: true,
		},
		{
			name:  "Transfer-Encoding xchunked with Content-Length",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: xchunked\r\nContent-Length: " + sl + "\r\n\r\n" + smuggled,
			first: []int{400, 501}, closeAfter: true,
		},
		{
			name:  "Transfer-Encoding with a space before the colon",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n" + tecl,
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "obs-fold in Transfer-Encoding",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nContent-Length: " + strconv.Itoa(len(clte)) + "\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + clte,
			first: []int{200, 400}, served: []string{"/attack"}, closeAfter: true,
		},
		{
			name:  "invalid chunk size",
			raw:   "POST /attack HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + smuggled + "\r\n0\r\n\r\n",
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "HTTP/1.1 without Host",
			raw:   "POST /attack HTTP/1.1\r\nContent-Length: " + sl + "\r\n\r\n" + smuggled,
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "two Host headers",
			raw:   "GET /attack HTTP/1.1\r\nHost: lb.test\r\nHost: other.test\r\n\r\n",
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "NUL in a header value",
			raw:   "GET /attack HTTP/1.1\r\nHost: lb.test\r\nX-Bad: a\x00b\r\n\r\n",
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "CR in a header value",
			raw:   "GET /attack HTTP/1.1\r\nHost: lb.test\r\nX-Bad: a\rContent-Length: " + sl + "\r\n\r\n" + smuggled,
			first: []int{400}, closeAfter: true,
		},
		{
			name:  "whitespace line after the request line",
			raw:   "GET /attack HTTP/1.1\r\n X-Bad: a\r\nHost: lb.test\r\n\r\n",
			first: []int{400}, closeAfter: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := be.Count()
			raw := rawExchange(t, lb.Addr, tc.raw+followUp, 5*time.Second)
			rs, err := parseResponses(raw)
			// Requests whose body broke off (the balancer aborted them) are
			// not requests the backend served.
			var seen, broken []string
			for _, r := range be.Requests()[before:] {
				if r.BodyErr != nil {
					broken = append(broken, r.URI)
					continue
				}
				seen = append(seen, r.URI)
			}
			t.Logf("responses %v, backend saw %q (and aborted %q)", statuses(rs), seen, broken)
			if slices.Contains(broken, "/smuggled") {
				t.Fatalf("DESYNC: the backend received the smuggled request")
			}
			if err != nil {
				t.Errorf("client cannot parse the balancer's replies: %v; raw %q", err, head(raw))
			}
			if slices.Contains(seen, "/smuggled") {
				t.Fatalf("DESYNC: the request hidden in the body (by one reading of the framing) was served as a request of its own; the backend saw %q", seen)
			}
			for _, r := range rs {
				if strings.Contains(r.Body, "/smuggled") {
					t.Fatalf("DESYNC: the client got a response to the smuggled request: %q", r.Body)
				}
			}
			if len(rs) == 0 {
				t.Fatalf("no response at all; raw %q", head(raw))
			}
			if !slices.Contains(tc.first, rs[0].Status) {
				t.Errorf("first response %d, want one of %v", rs[0].Status, tc.first)
			}
			var want []string
			if rs[0].Status/100 == 2 {
				want = append(want, tc.served...)
			}
			if !tc.closeAfter {
				want = append(want, "/follow-up")
			}
			if tc.closeAfter && len(rs) > 1 {
				t.Errorf("the connection was not closed after the ambiguous request: %d responses %v", len(rs), statuses(rs))
			}
			if !slices.Equal(seen, want) && !(len(seen) == 0 && len(want) == 0) {
				t.Errorf("backend saw %q, want %q", seen, want)
			}
			if rs[0].Status >= 400 {
				assertCleanError(t, rs[0].Header, rs[0].Body, be.Addr)
			}
		})
	}
}

// TestProtocolValidOddRequests are unusual but valid requests that must be
// served, with the follow-up served too: the balancer stays in step.
func TestProtocolValidOddRequests(t *testing.T) {
	t.Parallel()
	be := newRecordingBackend(t, func(w http.ResponseWriter, r *http.Request, rec recordedRequest) {
		fmt.Fprintf(w, "%s %q folded=%q", r.RequestURI, rec.Body, r.Header.Get("X-Folded"))
	})
	lb := startProtoBalancer(t, "", be.Addr)

	t.Run("same Content-Length twice", func(t *testing.T) {
		// RFC 9110 §8.6 lets a recipient accept identical repeated values.
		raw := rawExchange(t, lb.Addr, "POST /twice HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"+followUp, 5*time.Second)
		rs, err := parseResponses(raw)
		if err != nil {
			t.Fatalf("%v; raw %q", err, head(raw))
		}
		switch {
		case len(rs) == 1 && rs[0].Status == 400: // rejecting is allowed too
		case len(rs) == 2 && rs[0].Status == 200 && rs[1].Status == 200:
			if !strings.HasPrefix(rs[0].Body, `/twice "hello"`) || !strings.HasPrefix(rs[1].Body, "/follow-up") {
				t.Errorf("bodies %q, %q", rs[0].Body, rs[1].Body)
			}
		default:
			t.Errorf("statuses %v", statuses(rs))
		}
	})
	t.Run("obs-fold in an ordinary header", func(t *testing.T) {
		// RFC 9112 §5.2: reject with 400, or replace each obs-fold by SP.
		raw := rawExchange(t, lb.Addr, "GET /fold HTTP/1.1\r\nHost: lb.test\r\nX-Folded: a\r\n b\r\n\r\n"+followUp, 5*time.Second)
		rs, err := parseResponses(raw)
		if err != nil {
			t.Fatalf("%v; raw %q", err, head(raw))
		}
		switch {
		case len(rs) == 1 && rs[0].Status == 400:
		case len(rs) == 2 && rs[0].Status == 200 && rs[1].Status == 200:
			if !strings.Contains(rs[0].Body, `folded="a b"`) {
				t.Errorf("folded header reached the backend as %q, want \"a b\"", rs[0].Body)
			}
		default:
			t.Errorf("statuses %v", statuses(rs))
		}
	})
	t.Run("pipelined requests with bodies", func(t *testing.T) {
		before := be.Count()
		raw := rawExchange(t, lb.Addr,
			"POST /one HTTP/1.1\r\nHost: lb.test\r\nContent-Length: 5\r\n\r\nhello"+
				"POST /two HTTP/1.1\r\nHost: lb.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"+
				followUp, 5*time.Second)
		rs, err := parseResponses(raw)
		// A chunked request ends its connection (docs/proxying.md: Go's
		// server hides a Content-Length sent beside chunked, and RFC 9112
		// §6.1 asks to close then), so the follow-up is not served.
		if err != nil || len(rs) != 2 {
			t.Fatalf("responses %v err %v; raw %q", statuses(rs), err, head(raw))
		}
		if !strings.Contains(raw, "\r\nConnection: close\r\n") {
			t.Errorf("response to the chunked request lacks Connection: close; raw %q", head(raw))
		}
		if got := be.URIs()[before:]; !slices.Equal(got, []string{"/one", "/two"}) {
			t.Errorf("backend saw %q", got)
		}
		if !strings.HasPrefix(rs[0].Body, `/one "hello"`) || !strings.HasPrefix(rs[1].Body, `/two "abc"`) {
			t.Errorf("bodies %q, %q", rs[0].Body, rs[1].Body)
		}
	})
}

// longTarget is a request target of exactly n bytes. The length is in the
// query, so that access log lines (which show the path) stay short.
func longTarget(n int) string { return "/long?" + strings.Repeat("u", n-len("/long?")) }

// padHeaders returns header lines of about 1 KB each, at least total bytes.
func padHeaders(total int) string {
	var b strings.Builder
	for i := 0; b.Len() < total; i++ {
		fmt.Fprintf(&b, "X-Pad-%04d: %s\r\n", i, strings.Repeat("h", 1000))
	}
	return b.String()
}

// sizeCase is one request of a size-limit test.
type sizeCase struct {
	name   string
	lb     *balancer
	target string
	extra  string // header lines
	want   int
	// inStep: the request is small enough to be read whole, so the
	// pipelined follow-up must be served.
	inStep bool
}

func runSizeCase(t *testing.T, be *recordingBackend, tc sizeCase) {
	t.Helper()
	before := be.Count()
	raw := rawExchange(t, tc.lb.Addr, "GET "+tc.target+" HTTP/1.1\r\nHost: lb.test\r\n"+tc.extra+"\r\n"+followUp, 10*time.Second)
	rs, err := parseResponses(raw)
	if len(rs) == 0 {
		t.Fatalf("no response (err %v); raw %.200q", err, raw)
	}
	if rs[0].Status != tc.want {
		t.Fatalf("status %d, want %d", rs[0].Status, tc.want)
	}
	seen := be.URIs()[before:]
	if tc.want >= 400 {
		assertCleanError(t, rs[0].Header, rs[0].Body, be.Addr)
		if slices.Contains(seen, tc.target) {
			t.Errorf("rejected request reached the backend")
		}
	}
	if tc.inStep && (err != nil || len(rs) != 2 || rs[1].Status != 200) {
		t.Errorf("follow-up: responses %v err %v", statuses(rs), err)
	}
	for _, s := range seen {
		if s != tc.target && s != "/follow-up" {
			t.Errorf("backend saw unexpected target %.40q", s)
		}
	}
}

// TestProtocolSizeLimits: a request target over limits.max_uri_bytes
// (default 8 KiB) gets 414, request headers far over 64 KiB get 431, and
// just under the limits is served. The follow-up request is served after a
// 414 (the message was read whole, nothing is ambiguous) and never reaches
// the backend from a rejected request.
func TestProtocolSizeLimits(t *testing.T) {
	t.Parallel()
	be := newRecordingBackend(t, nil)
	lbDefault := startProtoBalancer(t, "", be.Addr)
	lbSmall := startProtoBalancer(t, "limits:\n  max_uri_bytes: 1024\n", be.Addr)

	for _, tc := range []sizeCase{
		{"URI of 8192 bytes", lbDefault, longTarget(8192), "", 200, true},
		{"URI of 8193 bytes", lbDefault, longTarget(8193), "", 414, true},
		{"URI of 1024 bytes with max_uri_bytes 1024", lbSmall, longTarget(1024), "", 200, true},
		{"URI of 1025 bytes with max_uri_bytes 1024", lbSmall, longTarget(1025), "", 414, true},
		{"headers of 60 KiB", lbDefault, "/h", padHeaders(60 << 10), 200, true},
		{"headers of 1 MiB", lbDefault, "/h", padHeaders(1 << 20), 431, false},
	} {
		t.Run(tc.name, func(t *testing.T) { runSizeCase(t, be, tc) })
	}
}

// TestProtocolHeaderLimitExact: a header section just over 64 KiB (the
// documented limits.max_header_bytes default) gets 431.
func TestProtocolHeaderLimitExact(t *testing.T) {
	t.Parallel()
	be := newRecordingBackend(t, nil)
	lb := startProtoBalancer(t, "", be.Addr)
	runSizeCase(t, be, sizeCase{"headers of 64 KiB + 1 KB", lb, "/h", padHeaders(64<<10 + 1000), 431, false})
}

// TestProtocolLongRequestLine414: a request target far over the URI limit,
// so long that the request line alone exceeds the header limit, still gets
// 414 URI Too Long (the issue: "request line too long → 414"), not 431.
func TestProtocolLongRequestLine414(t *testing.T) {
	t.Parallel()
	be := newRecordingBackend(t, nil)
	lb := startProtoBalancer(t, "", be.Addr)
	runSizeCase(t, be, sizeCase{"URI of 100000 bytes", lb, longTarget(100000), "", 414, false})
}
