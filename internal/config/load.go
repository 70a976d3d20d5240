package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize is the largest configuration file Load reads.
const MaxFileSize = 16 << 20

// Load reads the configuration file at path and parses it like Parse, with
// path as the file name in errors.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read config: " + errMsg(err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: path, Msg: "cannot read config: " + errMsg(err)}
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file is larger than %d MiB", MaxFileSize>>20)}
	}
	return Parse(data, path)
}

// errMsg drops the path an *os.PathError repeats.
func errMsg(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// Parse decodes a YAML configuration strictly (unknown keys, wrong types and
// duplicate keys are errors), applies the defaults and validates the
// result. source names the file in errors. On error the *Config is nil and
// the error is an *Error or several joined with errors.Join, one per line,
// sorted by line; Errors unpacks them.
func Parse(data []byte, source string) (*Config, error) {
	if len(bytes.TrimSpace(stripComments(data))) == 0 {
		return nil, &Error{File: source, Msg: emptyFile}
	}
	root, err := parseYAML(data, source)
	if err != nil {
		return nil, err
	}
	d := newDecoder(source)
	c := &Config{Source: source}
	if root.Kind != yaml.MappingNode {
		d.add("", root.Line, "expected a mapping of keys ("+strings.Join(structKeys(reflect.TypeFor[Config]()), ", ")+"), got "+describe(root))
		return nil, d.errs.err()
	}
	d.rootLine = root.Line
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	if d.overBudget != nil {
		return nil, d.overBudget // the other problems are noise from the cut-off
	}
	for i := range c.Backends {
		c.Backends[i].Line = d.line(fmt.Sprintf("backends[%d]", i))
	}
	c.Source = source
	v := &validator{file: source, pos: d}
	v.errs = d.errs
	raw := c.Clone()
	c.ApplyDefaults()
	v.validate(raw, c)
	if err := v.errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Validate checks a configuration built or changed in code (for example
// after command-line flags were applied), with the same rules as Parse. It
// does not change c. Errors name c.Source and, for backends, Backend.Line.
func (c *Config) Validate() error {
	eff := c.Clone()
	eff.ApplyDefaults()
	v := &validator{file: c.Source, pos: backendLines(c.Backends)}
	v.validate(c, eff)
	return v.errs.err()
}

// stripComments blanks out whole-line comments, to tell an empty file.
func stripComments(data []byte) []byte {
	var out []byte
	for line := range bytes.Lines(data) {
		t := bytes.TrimSpace(line)
		if len(t) == 0 || t[0] == '#' || string(t) == "---" || string(t) == "..." {
			continue
		}
		out = append(out, line...)
	}
	return out
}

const emptyFile = "file is empty (expected at least a backends list of entries with host and port)"

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses data into its one document's root node.
func parseYAML(data []byte, source string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err == io.EOF {
		return nil, &Error{File: source, Msg: emptyFile}
	} else if err != nil {
		return nil, syntaxError(err, data, source)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == io.EOF:
	case err != nil:
		return nil, syntaxError(err, data, source)
	default:
		if len(extra.Content) > 0 && !isNull(extra.Content[0]) {
			return nil, &Error{File: source, Line: extra.Line, Msg: "a second YAML document (after \"---\"); a config file holds one"}
		}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &Error{File: source, Msg: emptyFile}
	}
	root := doc.Content[0]
	if isNull(root) {
		return nil, &Error{File: source, Line: root.Line, Msg: emptyFile}
	}
	return root, nil
}

func syntaxError(err error, data []byte, source string) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if strings.Contains(msg, "tab character") {
		// The parser names the line of the enclosing block; point at the
		// first line indented with a tab from there on instead.
		if l := tabIndentedLine(data, line); l > 0 {
			line = l
		}
		msg += " (indent with spaces, not tabs)"
	}
	return &Error{File: source, Line: line, Msg: "YAML syntax error: " + msg}
}

// tabIndentedLine returns the first line at or after from whose
// indentation contains a tab, or 0.
func tabIndentedLine(data []byte, from int) int {
	n := 0
	for line := range bytes.Lines(data) {
		n++
		if n < from {
			continue
		}
		indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
		if bytes.IndexByte(indent, '\t') >= 0 {
			return n
		}
	}
	return 0
}

// decoder turns a yaml.Node tree into a Config by reflection, recording
// for every key path where it was written and collecting every problem
// instead of stopping at the first.
type decoder struct {
	file     string
	errs     errorList
	rootLine int
	at       map[string]int  // path → line of the key (or list item)
	zero     map[string]bool // paths written as an explicit 0
	bad      map[string]bool // paths that failed to decode
	budget   int             // nodes left to visit; bounds alias expansion

	overBudget *Error // set when budget ran out
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, at: map[string]int{}, zero: map[string]bool{}, bad: map[string]bool{}, budget: 1_000_000}
}

func (d *decoder) add(path string, line int, msg string) {
	d.errs = append(d.errs, &Error{File: d.file, Line: line, Field: path, Msg: msg})
	d.bad[path] = true
}

// positions implementation for the validator.

func (d *decoder) explicitZero(path string) bool {
	return d.zero[path]
}
func (d *decoder) failed(path string) bool { return d.bad[path] }

// line returns the line of path, or of its nearest written parent, or of
// the first key of the file.
func (d *decoder) line(path string) int {
	for p := path; p != ""; p = parentPath(p) {
		if l, ok := d.at[p]; ok {
			return l
		}
	}
	return d.rootLine
}

// parentPath returns "a.b" for "a.b.c" and "a.b" for "a.b[3]"; "" at the top.
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var durationType = reflect.TypeFor[Duration]()

// decode stores n into v (addressable) and records problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(path, n.Line) {
		return
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.add(path, n.Line, "alias to an unknown anchor")
			return
		}
		n = n.Alias
	}
	if isNull(n) {
		return // keep the zero value: "key:" with nothing means "not given"
	}
	if v.Type() == durationType {
		dur, msg := decodeDuration(n)
		if msg != "" {
			d.add(path, n.Line, msg)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		if !d.bad[path] {
			v.Set(p)
		}
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.add(path, n.Line, "expected a list, got "+describe(n))
			return
		}
		if len(n.Content) == 0 {
			return // "[]" is the same as leaving the key out
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.at[p] = item.Line
			d.decode(item, s.Index(i), p)
		}
		v.Set(s)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.add(path, n.Line, "expected a string, got "+describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.add(path, n.Line, "expected an integer, got "+describe(n))
			return
		}
		var i int64
		if err := n.Decode(&i); err != nil || i < math.MinInt || i > math.MaxInt {
			d.add(path, n.Line, fmt.Sprintf("%s is not a usable integer", n.Value))
			return
		}
		if i == 0 {
			d.zero[path] = true
		}
		v.SetInt(i)
	case reflect.Bool:
		b, ok := parseBool(n)
		if !ok {
			d.add(path, n.Line, "expected true or false, got "+describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Float64:
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || tag != "!!int" && tag != "!!float" {
			d.add(path, n.Line, "expected a number, got "+describe(n))
			return
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			d.add(path, n.Line, fmt.Sprintf("%s is not a usable number", n.Value))
			return
		}
		v.SetFloat(f)
	default:
		panic("config: cannot decode into " + v.Type().String())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	fields := structFields(v.Type())
	if n.Kind != yaml.MappingNode {
		what := "a mapping"
		if path != "" {
			what = "a mapping with the keys " + strings.Join(structKeys(v.Type()), ", ")
		}
		d.add(path, n.Line, "expected "+what+", got "+describe(n))
		return
	}
	for _, kv := range d.pairs(n, path) {
		key := kv.key.Value
		p := joinPath(path, key)
		idx, ok := fields.index[key]
		if !ok {
			msg := "unknown key (expected one of " + strings.Join(fields.keys, ", ") + ")"
			if s := suggest(key, fields.keys); s != "" {
				msg += "; did you mean " + strconv.Quote(s) + "?"
			}
			d.add(p, kv.key.Line, msg)
			continue
		}
		d.at[p] = kv.key.Line
		d.decode(kv.value, v.Field(idx), p)
	}
}

// spend counts one visited node and reports whether the budget allows it;
// aliases could otherwise make a small file expand without bound.
func (d *decoder) spend(path string, line int) bool {
	d.budget--
	if d.budget == -1 {
		d.overBudget = &Error{File: d.file, Line: line, Field: path, Msg: "document is too large or expands aliases too often"}
	}
	return d.budget >= 0
}

type pair struct{ key, value *yaml.Node }

// pairs returns the key/value pairs of mapping n: its own keys, then keys
// merged in with "<<: *anchor" that it does not set itself. A key given
// twice is reported and its later value ignored.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	var own, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Tag == "" || k.Tag == "!") {
			merged = append(merged, d.mergeSources(val, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.add(path, k.Line, "expected a key name, got "+describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.add(joinPath(path, k.Value), k.Line, fmt.Sprintf("key given twice (first on line %d)", first))
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, pair{k, val})
	}
	for _, kv := range merged {
		if _, ok := seen[kv.key.Value]; !ok {
			seen[kv.key.Value] = kv.key.Line
			own = append(own, kv)
		}
	}
	return own
}

// mergeSources returns the pairs a "<<" merge key brings in: those of one
// mapping or of a list of mappings (earlier ones win).
func (d *decoder) mergeSources(val *yaml.Node, path string) []pair {
	if !d.spend(path, val.Line) {
		return nil
	}
	for val.Kind == yaml.AliasNode && val.Alias != nil {
		val = val.Alias
	}
	switch val.Kind {
	case yaml.MappingNode:
		return d.pairs(val, path)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range val.Content {
			out = append(out, d.mergeSources(item, path)...)
		}
		return out
	}
	d.add(path, val.Line, "\"<<\" merges a mapping or a list of mappings, got "+describe(val))
	return nil
}

func parseBool(n *yaml.Node) (v, ok bool) {
	if n.Kind != yaml.ScalarNode {
		return false, false
	}
	if n.ShortTag() == "!!bool" {
		err := n.Decode(&v)
		return v, err == nil
	}
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
		return false, false
	}
	switch n.Value { // YAML 1.1 spellings
	case "yes", "Yes", "YES", "on", "On", "ON":
		return true, true
	case "no", "No", "NO", "off", "Off", "OFF":
		return false, true
	}
	return false, false
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's kind and value for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!int", "!!float":
			return "the number " + v
		case "!!bool":
			return "the boolean " + v
		case "!!str":
			return "the string " + strconv.Quote(v)
		}
		return strconv.Quote(v)
	}
	return "an unexpected node"
}

// fieldSet maps the yaml keys of a struct type to field indexes.
type fieldSet struct {
	keys  []string // in declaration order, for messages
	index map[string]int
}

var fieldSets sync.Map // reflect.Type → *fieldSet

func structFields(t reflect.Type) *fieldSet {
	if fs, ok := fieldSets.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{index: map[string]int{}}
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlKey(f)
		if name == "" {
			continue
		}
		fs.keys = append(fs.keys, name)
		fs.index[name] = i
	}
	fieldSets.Store(t, fs)
	return fs
}

func structKeys(t reflect.Type) []string { return structFields(t).keys }

// yamlKey returns the key of a struct field in YAML; "" for fields the file
// does not set (unexported, or tagged "-").
func yamlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		name = strings.ToLower(f.Name)
	}
	return name
}

// suggest returns the candidate closest to key when it is close enough to
// be a typo.
func suggest(key string, candidates []string) string {
	best, bestD := "", 2+len(key)/4 // a typo changes few letters, more in long keys
	for _, c := range candidates {
		if dist := editDistance(strings.ToLower(key), c); dist < bestD {
			best, bestD = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance with adjacent transpositions.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
