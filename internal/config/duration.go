package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// String formats d like time.Duration does, without the zero units at the
// end: "2m" rather than "2m0s", "1h30m" rather than "1h30m0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalYAML writes d as a duration string, so a printed config reads back.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText writes d as a duration string (used by encoding/json).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration string such as "1.5s"; see UnmarshalYAML.
func (d *Duration) UnmarshalText(b []byte) error {
	v, msg := parseDuration(string(b), false)
	if msg != "" {
		return fmt.Errorf("%s", msg)
	}
	*d = v
	return nil
}

// UnmarshalYAML reads a Go duration string ("1.5s", "200ms", "2m"). A number
// without a unit is an error (is 5 seconds or milliseconds?), except 0; so
// is a negative duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, msg := decodeDuration(n)
	if msg != "" {
		return fmt.Errorf("line %d: %s", n.Line, msg)
	}
	*d = v
	return nil
}

// decodeDuration reads a duration from a YAML node; msg says what is wrong.
func decodeDuration(n *yaml.Node) (d Duration, msg string) {
	if n.Kind != yaml.ScalarNode {
		return 0, "expected a duration such as \"1.5s\" or \"200ms\", got " + describe(n)
	}
	switch n.ShortTag() {
	case "!!null":
		return 0, ""
	case "!!str":
		return parseDuration(n.Value, false)
	case "!!int", "!!float":
		return parseDuration(n.Value, true)
	}
	return 0, "expected a duration such as \"1.5s\" or \"200ms\", got " + describe(n)
}

// parseDuration parses s; number says s was written as a YAML number.
func parseDuration(s string, number bool) (Duration, string) {
	t := strings.TrimSpace(s)
	if t == "0" || t == "" && !number {
		return 0, ""
	}
	if isNumber(t) {
		if number {
			return 0, fmt.Sprintf("%s has no unit (write e.g. \"%ss\" or \"%sms\")", t, t, t)
		}
		return 0, fmt.Sprintf("%q has no unit (write e.g. \"%ss\" or \"%sms\")", s, t, t)
	}
	v, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Sprintf("%q is not a duration (expected a number with a unit ns, us, ms, s, m or h, e.g. \"1.5s\", \"200ms\", \"2m\")", s)
	}
	if v < 0 {
		return 0, fmt.Sprintf("%q is negative (expected a duration of 0 or more)", s)
	}
	return Duration(v), ""
}

// isNumber reports whether s is a plain decimal number such as "5", "-1" or
// "1.5".
func isNumber(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "-"), "+")
	digits, dots := 0, 0
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			dots++
		case c == '_':
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}
