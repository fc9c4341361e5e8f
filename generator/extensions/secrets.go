package extensions

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"
	"github.com/google/go-jsonnet/toolutils"

	"github.com/meshfleet/meshfleet/generator/fleet"
)

// secretKeys are the fields of a Secret (or of the CA bundle cacerts,
// whatever its kind) that hold its material.
var secretKeys = []string{"data", "stringData", "binaryData"}

// refusal is secret material an extension tried to write. Needle is
// what to look for in the extension's source to place the error: the
// offending string, else the field's name.
type refusal struct {
	path, msg, needle, key string
}

func (r *refusal) Error() string { return r.path + ": " + r.msg }

// refuseSecrets refuses an added object that is a Secret with data or
// that holds secret material anywhere.
func refuseSecrets(at string, o map[string]any) error {
	if isSecret(o) {
		for _, k := range secretKeys {
			if nonEmpty(o[k]) {
				return &refusal{path: at + "." + k, msg: "extensions may not add Secrets with data: meshfleet writes no secret material to git; use a secret store (External Secrets, SOPS) instead", key: k}
			}
		}
	}
	if err := scan(at, o); err != nil {
		return err
	}
	for _, k := range secretKeys {
		if err := credentialKeys(at+"."+k, o[k]); err != nil {
			return err
		}
	}
	return nil
}

// credentialKey names an entry of a ConfigMap (or any object's data)
// that holds a credential whatever its value looks like.
var credentialKey = regexp.MustCompile(`(?i)(^|[._-])(token|password|passwd|secret|credentials?|api[._-]?key|private[._-]?key|client[._-]?key)([._-]|$)|\.(key|pem|p12|pfx|jks)$`)

// credentialKeys refuses data entries named like credentials.
func credentialKeys(at string, data any) error {
	m, _ := data.(map[string]any)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if credentialKey.MatchString(k) && nonEmpty(m[k]) {
			return &refusal{path: at + "." + fleet.Quote(k), msg: "a data entry named like a credential; meshfleet writes no secret material to git", key: k}
		}
	}
	return nil
}

// refusePatch refuses a patch that writes into the data of a Secret or
// of cacerts, or that holds secret material anywhere.
func refusePatch(at string, pt patch) error {
	if pt.Target.Kind == "Secret" || pt.Target.Name == "cacerts" {
		for _, k := range secretKeys {
			if _, ok := pt.Patch[k]; ok {
				return &refusal{path: at + ".patch." + k, msg: fmt.Sprintf("extensions may not patch the %s of %s %s: meshfleet writes no secret material to git", k, pt.Target.Kind, pt.Target.Name), key: k}
			}
		}
	}
	if pt.Target.Name == "cacerts" {
		if spec, ok := pt.Patch["spec"].(map[string]any); ok {
			if _, ok := spec["data"]; ok {
				return &refusal{path: at + ".patch.spec.data", msg: "extensions may not change where the CA bundle cacerts comes from", key: "data"}
			}
		}
	}
	if err := scan(at+".patch", pt.Patch); err != nil {
		return err
	}
	for _, k := range secretKeys {
		if err := credentialKeys(at+".patch."+k, pt.Patch[k]); err != nil {
			return err
		}
	}
	return nil
}

func isSecret(o map[string]any) bool {
	av, _ := o["apiVersion"].(string)
	return o["kind"] == "Secret" && (av == "v1" || av == "")
}

func nonEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case map[string]any:
		return len(v) > 0
	case string:
		return v != ""
	}
	return true
}

// scan refuses secret material in any key or string value of v.
func scan(at string, v any) error {
	switch v := v.(type) {
	case string:
		if what := fleet.SecretMaterial(v); what != "" {
			return &refusal{path: at, msg: fmt.Sprintf("holds %s; meshfleet writes no secret material to git", what), needle: v}
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if what := fleet.SecretMaterial(k); what != "" {
				return &refusal{path: at, msg: fmt.Sprintf("a key holds %s", what), needle: k}
			}
			// What the YAML writer would refuse, refused here with a position.
			if len(k) > 1000 {
				return &refusal{path: at, msg: fmt.Sprintf("a key of %d bytes; YAML keys are limited to 1024 characters", len(k)), needle: k}
			}
			if k == "<<" {
				return &refusal{path: at, msg: `key "<<": kustomize reads it as a YAML merge key and drops it`, needle: k}
			}
			if err := scan(at+"."+fleet.Quote(k), v[k]); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := scan(fmt.Sprintf("%s[%d]", at, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}

// locate formats err as ":LINE:COL: message" (or ": message" when no
// position is known) for the extension file: a refusal is placed at the
// string literal in the file that holds the offending value, else at the
// field it names.
func locate(file string, err error) string {
	var r *refusal
	if !errors.As(err, &r) {
		return ": " + err.Error()
	}
	src, rerr := fleet.ReadFile(file)
	if rerr != nil {
		return ": " + err.Error()
	}
	node, perr := jsonnet.SnippetToAST(file, string(src))
	if perr != nil {
		return ": " + err.Error()
	}
	var loc *ast.LocationRange
	find := func(match func(string) bool) {
		var walk func(n ast.Node)
		walk = func(n ast.Node) {
			if n == nil || loc != nil {
				return
			}
			if s, ok := n.(*ast.LiteralString); ok && match(s.Value) && s.Loc().IsSet() {
				loc = s.Loc()
				return
			}
			if o, ok := n.(*ast.DesugaredObject); ok {
				for _, f := range o.Fields {
					if s, ok := f.Name.(*ast.LiteralString); ok && match(s.Value) && f.LocRange.IsSet() {
						l := f.LocRange
						loc = &l
						return
					}
				}
			}
			for _, c := range toolutils.Children(n) {
				walk(c)
			}
		}
		walk(node)
	}
	if r.needle != "" {
		find(func(s string) bool { return s == r.needle })
		if loc == nil {
			find(func(s string) bool {
				return len(s) >= 8 && strings.Contains(r.needle, s) && fleet.SecretMaterial(s) != ""
			})
		}
	}
	if loc == nil && r.key != "" {
		find(func(s string) bool { return s == r.key })
	}
	if loc == nil {
		return ": " + r.Error()
	}
	return fmt.Sprintf(":%d:%d: %s", loc.Begin.Line, loc.Begin.Column, r.Error())
}
