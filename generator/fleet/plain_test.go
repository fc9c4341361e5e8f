package fleet_test

import (
	"strings"
	"testing"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// recorder is an Isolator that records what it is asked to parse.
type recorder struct{ parsed []string }

func (r *recorder) Parse(filename string, src []byte) (*fleet.Fleet, error) {
	r.parsed = append(r.parsed, filename)
	return fleet.ParseHere(filename, src)
}

func (r *recorder) EvalJsonnet(dir string, jobs []fleet.JsonnetJob) ([]string, error) {
	return fleet.EvalJsonnetHere(dir, jobs)
}

const plainFleet = `apiVersion: meshfleet.io/v1alpha1
kind: Fleet
metadata: {name: m}
spec:
  clusters:
    a: {port: 6443, ratio: 0.5}
`

// Plain documents are parsed in this process; anything whose cost may
// outgrow its size goes to the isolator.
func TestPlain(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, c := range []struct {
		name, file, src string
		plain           bool
	}{
		{"yaml", "f.yaml", plainFleet, true},
		{"yml", "f.yml", plainFleet, true},
		{"json", "f.json", `{"apiVersion": "meshfleet.io/v1alpha1", "spec": {"clusters": {"a": {"port": 6443}}}}`, true},
		{"cue", "f.cue", plainFleet, false},
		{"jsonnet", "f.jsonnet", `{}`, false},
		{"anchor and alias", "f.yaml", plainFleet + "    b: &x {}\n    c: *x\n", false},
		{"anchor alone", "f.yaml", plainFleet + "    b: &x {}\n", false},
		{"tag", "f.yaml", plainFleet + "    b: !!str 1\n", false},
		{"custom tag", "f.yaml", plainFleet + "    b: !thing {}\n", false},
		{"exponent", "f.yaml", plainFleet + "    b: {port: 1e999999999}\n", false},
		{"exponent in JSON", "f.json", `{"a": 1E+5}`, false},
		{"33 digits", "f.yaml", plainFleet + "    b: {port: " + strings.Repeat("9", 33) + "}\n", false},
		{"32 digits", "f.yaml", plainFleet + "    b: {port: " + strings.Repeat("9", 32) + "}\n", true},
		{"e in a string", "f.yaml", plainFleet + "    b: {name: abc1e5, quoted: \"1e5\"}\n", true},
		{"a number-like word with e", "f.yaml", plainFleet + "    b: {name: 1e5x}\n", false},
		{"nested 32 deep", "f.yaml", "a: " + nest(31) + "\n", true},
		{"nested 33 deep", "f.yaml", "a: " + nest(32) + "\n", false},
		{"over 256 KiB", "f.yaml", plainFleet + "# " + strings.Repeat("x", 256<<10) + "\n", false},
		{"two documents", "f.yaml", plainFleet + "---\na: 1\n", false},
		{"syntax error", "f.yaml", "a: [\n", false},
		{"empty", "f.yaml", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := fleet.Plain(c.file, []byte(c.src)); got != c.plain {
				t.Errorf("Plain = %v, want %v", got, c.plain)
			}
			r := &recorder{}
			fleet.SetIsolator(r)
			defer fleet.SetIsolator(nil)
			fleet.Parse(c.file, []byte(c.src))
			if isolated := len(r.parsed) > 0; isolated == c.plain {
				t.Errorf("isolated = %v for a document with Plain = %v", isolated, c.plain)
			}
		})
	}
}

// FuzzPlain checks that Plain never panics and that a document it lets
// into this process parses without a parser failure.
func FuzzPlain(f *testing.F) {
	f.Add(uint8(0), []byte(plainFleet))
	f.Add(uint8(1), []byte(`{"a": [1, 2.5, "x"], "b": {"c": null}}`))
	f.Add(uint8(0), []byte("a: &x {}\nb: *x\n"))
	f.Add(uint8(0), []byte("a: !!binary aGk=\n"))
	f.Add(uint8(0), []byte("a: [[[[[[[[]]]]]]]]\n"))
	f.Add(uint8(0), []byte("a: 0x1F\nb: .inf\nc: -.5\nd: +12\n"))
	f.Fuzz(func(t *testing.T, kind uint8, in []byte) {
		name := []string{"fleet.yaml", "fleet.json"}[kind%2]
		if !fleet.Plain(name, in) {
			return
		}
		if _, err := fleet.ParseHere(name, in); err != nil && strings.Contains(err.Error(), "the parser failed on this input") {
			t.Fatalf("a plain document broke the parser: %v", err)
		}
	})
}
