package overlays

import (
	"fmt"
	"sort"

	"github.com/meshfleet/meshfleet/generator/fleet"
	"github.com/meshfleet/meshfleet/generator/mesh"
)

// noSecrets is the last check before an object is written: whatever put
// it into the plan, a Secret carries no data and no string holds secret
// material (see [fleet.SecretMaterial]). The fleet rules and the
// extension checks refuse such input earlier, with its position; this
// makes it true of every file meshfleet writes.
func noSecrets(o mesh.Object, clean cleanStrings) error {
	if o["kind"] == "Secret" {
		for _, k := range []string{"data", "stringData"} {
			if v, ok := o[k]; ok && v != nil {
				return fmt.Errorf("Secret %v has %s: meshfleet writes no secret material", name(o), k)
			}
		}
	}
	if !clean.holdsSecret(o) {
		return nil
	}
	return scanStrings(name(o), o) // the first finding, named
}

// cleanStrings remembers short strings found to hold no secret
// material: keys and names repeat in every object and every cluster.
// A nil cleanStrings remembers nothing.
type cleanStrings map[string]struct{}

// maxRemembered bounds the strings cleanStrings keeps: longer ones are
// rarely repeated.
const maxRemembered = 64

func (c cleanStrings) secret(s string) bool {
	if c == nil || len(s) > maxRemembered {
		return fleet.SecretMaterial(s) != ""
	}
	if _, ok := c[s]; ok {
		return false
	}
	if fleet.SecretMaterial(s) != "" {
		return true
	}
	c[s] = struct{}{}
	return false
}

// holdsSecret reports whether a key or string in v holds secret
// material: scanStrings without the names and the order, for the
// common case of nothing found.
func (c cleanStrings) holdsSecret(v any) bool {
	switch v := v.(type) {
	case string:
		return c.secret(v)
	case map[string]any:
		for k, e := range v {
			if c.secret(k) || c.holdsSecret(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if c.holdsSecret(e) {
				return true
			}
		}
	}
	return false
}

func name(o mesh.Object) string {
	md, _ := o["metadata"].(map[string]any)
	return fmt.Sprintf("%v %v", o["kind"], md["name"])
}

func scanStrings(at string, v any) error {
	switch v := v.(type) {
	case string:
		if what := fleet.SecretMaterial(v); what != "" {
			return fmt.Errorf("%s holds %s: meshfleet writes no secret material", at, what)
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := scanStrings(at, k); err != nil {
				return err
			}
			if err := scanStrings(at+"."+fleet.Quote(k), v[k]); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := scanStrings(fmt.Sprintf("%s[%d]", at, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}
