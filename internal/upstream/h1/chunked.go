package h1

// maxChunkLine bounds a chunk-size line with its extensions.
const maxChunkLine = 4096

// maxChunkSize bounds one chunk's size, far above any real chunk, so that
// sizes never overflow.
const maxChunkSize = 1 << 60

// parseChunkLine parses a chunk-size line without its CRLF (RFC 9112 §7.1):
//
//	chunk-size [ chunk-ext ]
//	chunk-size = 1*HEXDIG
//	chunk-ext  = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
//
// Extensions are checked and ignored.
func parseChunkLine(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if n >= maxChunkSize>>4 {
			return 0, protoErr("chunk size too large")
		}
		n = n<<4 | int64(d)
	}
	if i == 0 {
		return 0, protoErr("malformed chunk size")
	}
	if err := checkChunkExt(line[i:]); err != nil {
		return 0, err
	}
	return n, nil
}

// checkChunkExt checks a chunk-ext list.
func checkChunkExt(s []byte) error {
	for len(s) > 0 {
		s = skipOWS(s)
		if len(s) == 0 || s[0] != ';' {
			return protoErr("malformed chunk extension")
		}
		s = skipOWS(s[1:])
		n := tokenLen(s)
		if n == 0 {
			return protoErr("malformed chunk extension name")
		}
		s = s[n:]
		rest := skipOWS(s)
		if len(rest) == 0 || rest[0] != '=' {
			s = rest
			continue
		}
		s = skipOWS(rest[1:])
		if len(s) > 0 && s[0] == '"' {
			n = quotedStringLen(s)
		} else {
			n = tokenLen(s)
		}
		if n == 0 {
			return protoErr("malformed chunk extension value")
		}
		s = s[n:]
	}
	return nil
}

func skipOWS(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// tokenLen returns the length of the token at the start of s.
func tokenLen(s []byte) int {
	n := 0
	for n < len(s) && tchar[s[n]] {
		n++
	}
	return n
}

// quotedStringLen returns the length of the quoted-string at the start of
// s (RFC 9110 §5.6.4), or 0 if there is none.
func quotedStringLen(s []byte) int {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i >= len(s) || !isFieldVChar(s[i]) && s[i] != ' ' && s[i] != '\t' {
				return 0
			}
		case !isFieldVChar(c) && c != ' ' && c != '\t':
			return 0
		}
	}
	return 0
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
