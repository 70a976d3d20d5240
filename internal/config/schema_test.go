package config

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const schemaFile = "../../docs/config.schema.json"

// TestSchemaMatchesStructs checks that docs/config.schema.json names
// exactly the keys of the Go structs (by their yaml tags), at every level,
// that every object forbids other keys, and that the defaults it shows are
// the Go defaults. The schema cannot drift from the code.
func TestSchemaMatchesStructs(t *testing.T) {
	// The example configs are the schema's and the code's shared ground.
	for _, f := range []string{"../../config/full.yaml", "../../config/backends.yaml"} {
		if _, err := Load(f); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	if root["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v, want draft 2020-12", root["$schema"])
	}
	s := &schemaWalker{t: t, root: root}
	def := reflect.ValueOf(Default()).Elem()
	s.compare("", root, reflect.TypeFor[Config](), def)
}

type schemaWalker struct {
	t    *testing.T
	root map[string]any
}

// resolve follows "$ref": "#/$defs/NAME" (also when next to other keywords).
func (s *schemaWalker) resolve(node map[string]any) map[string]any {
	for {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		defs, _ := s.root["$defs"].(map[string]any)
		target, _ := defs[name].(map[string]any)
		if !ok || target == nil {
			s.t.Fatalf("unresolvable $ref %q", ref)
		}
		node = target
	}
}

// compare checks schema node (for the key path) against Go type typ; def
// is the default value at that place, or invalid where there is none.
func (s *schemaWalker) compare(path string, node map[string]any, typ reflect.Type, def reflect.Value) {
	if d, ok := node["default"]; ok && def.IsValid() {
		s.compareDefault(path, d, def)
	}
	node = s.resolve(node)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
		if def.IsValid() {
			if def.IsNil() {
				def = reflect.Value{}
			} else {
				def = def.Elem()
			}
		}
	}
	switch {
	case typ == durationType:
		return
	case typ.Kind() == reflect.Slice:
		items, ok := node["items"].(map[string]any)
		if !ok {
			s.t.Errorf("schema %s: a list in Go, but no items in the schema", path)
			return
		}
		s.compare(path+"[]", items, typ.Elem(), reflect.Value{})
	case typ.Kind() == reflect.Struct:
		if node["additionalProperties"] != false {
			s.t.Errorf("schema %s: additionalProperties must be false", orRoot(path))
		}
		props, _ := node["properties"].(map[string]any)
		var schemaKeys []string
		for k := range props {
			schemaKeys = append(schemaKeys, k)
		}
		goKeys := slices.Clone(structKeys(typ))
		sort.Strings(schemaKeys)
		sort.Strings(goKeys)
		for _, k := range goKeys {
			if _, ok := props[k]; !ok {
				s.t.Errorf("schema %s: key %q of the Go struct %s is missing", orRoot(path), k, typ.Name())
			}
		}
		for _, k := range schemaKeys {
			if !slices.Contains(goKeys, k) {
				s.t.Errorf("schema %s: key %q is not in the Go struct %s", orRoot(path), k, typ.Name())
			}
		}
		fields := structFields(typ)
		for _, k := range goKeys {
			p, ok := props[k].(map[string]any)
			if !ok {
				continue
			}
			f := typ.Field(fields.index[k])
			var fd reflect.Value
			if def.IsValid() {
				fd = def.Field(fields.index[k])
			}
			s.compare(joinPath(path, k), p, f.Type, fd)
		}
	}
}

func (s *schemaWalker) compareDefault(path string, want any, got reflect.Value) {
	for got.Kind() == reflect.Pointer {
		if got.IsNil() {
			s.t.Errorf("schema %s: default %v, but Go has none", path, want)
			return
		}
		got = got.Elem()
	}
	ok := false
	switch {
	case got.Type() == durationType:
		w, isStr := want.(string)
		d, err := time.ParseDuration(w)
		ok = isStr && err == nil && d == got.Interface().(Duration).D()
	case got.Kind() == reflect.Int:
		w, isNum := want.(float64)
		ok = isNum && int64(w) == got.Int()
	case got.Kind() == reflect.Float64:
		w, isNum := want.(float64)
		ok = isNum && w == got.Float()
	case got.Kind() == reflect.String:
		ok = want == got.String()
	case got.Kind() == reflect.Bool:
		ok = want == got.Bool()
	}
	if !ok {
		s.t.Errorf("schema %s: default %v, Go default %v", path, want, got)
	}
}

func orRoot(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// TestFullExampleHasEveryKey checks that config/full.yaml writes every key
// the structs have (backend keys on some backend), so it stays a complete
// example.
func TestFullExampleHasEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../config/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := joinPath(path, n.Content[i].Value)
				written[p] = true
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path+"[]")
			}
		}
	}
	walk(&doc, "")
	var expect func(typ reflect.Type, path string)
	expect = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			if typ.Kind() == reflect.Slice {
				path += "[]"
			}
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ == durationType {
			return
		}
		for _, k := range structKeys(typ) {
			p := joinPath(path, k)
			if p == "backends[].health_check" {
				// An override takes the same keys as the global health_check,
				// which full.yaml shows in full.
				if !written[p] {
					t.Errorf("config/full.yaml lacks %s", p)
				}
				continue
			}
			if !written[p] {
				t.Errorf("config/full.yaml lacks %s", p)
			}
			f, _ := typ.FieldByName(fieldName(typ, k))
			expect(f.Type, p)
		}
	}
	expect(reflect.TypeFor[Config](), "")
}

func fieldName(typ reflect.Type, key string) string {
	return typ.Field(structFields(typ).index[key]).Name
}

// TestJSONTagsMatchYAML keeps the admin API's JSON keys equal to the file's.
func TestJSONTagsMatchYAML(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var check func(typ reflect.Type)
	check = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			y, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			j, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if y != "-" && y != j {
				t.Errorf("%s.%s: yaml key %q, json key %q", typ.Name(), f.Name, y, j)
			}
			check(f.Type)
		}
	}
	check(reflect.TypeFor[Config]())

	c := Default()
	c.Sticky.Secret = "s3cret"
	out, err := json.Marshal(c.Redacted())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"dial":"5s"`, `"secret":"\u003credacted\u003e"`, `"backends":[{"host":"127.0.0.1","port":9001,"weight":1,"line":0`} {
		if !strings.Contains(string(out), want) && !strings.Contains(string(out), strings.TrimSuffix(want, `,"line":0`)) {
			t.Errorf("JSON lacks %s:\n%s", want, out)
		}
	}
	var back Config
	if err := json.Unmarshal(out, &back); err != nil || back.Timeouts.Dial.D() != DefaultDial {
		t.Errorf("JSON round trip: %v, dial %v", err, back.Timeouts.Dial)
	}
}
