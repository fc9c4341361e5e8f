package schemagen_test

import (
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"strings"
)

// validator checks a JSON document against a JSON Schema (draft 2020-12).
// It implements exactly the keywords the generated schema uses and
// refuses a schema with any other keyword, so that the agreement test
// cannot pass by ignoring a constraint it does not understand. It is an
// implementation of the JSON Schema specification independent of CUE:
// that is what lets it prove that an editor reading the file sees the
// same rules as meshfleet does.
type validator struct {
	doc  map[string]any
	defs map[string]any
	res  map[string]*regexp.Regexp
}

func newValidator(schema []byte) (*validator, error) {
	var doc map[string]any
	if err := decode(schema, &doc); err != nil {
		return nil, err
	}
	v := &validator{doc: doc, res: map[string]*regexp.Regexp{}}
	v.defs, _ = doc["$defs"].(map[string]any)
	if err := v.check(doc, "#"); err != nil {
		return nil, err
	}
	return v, nil
}

// decode decodes JSON with numbers kept exact.
func decode(b []byte, v any) error {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	return d.Decode(v)
}

// check refuses keywords the validator does not implement, anywhere in s.
func (v *validator) check(s any, at string) error {
	switch s := s.(type) {
	case bool:
		return nil
	case map[string]any:
		for k, sub := range s {
			switch k {
			case "pattern":
				// JSON Schema patterns are ECMA-262; the generated ones
				// use only syntax that means the same in Go's RE2.
				re, err := regexp.Compile(sub.(string))
				if err != nil {
					return fmt.Errorf("%s: pattern: %w", at, err)
				}
				v.res[sub.(string)] = re
			case "$schema", "$id", "title", "description", "default", "const", "enum", "type", "required", "$ref", "minimum", "maximum":
			case "$defs", "properties":
				for name, d := range sub.(map[string]any) {
					if err := v.check(d, at+"/"+k+"/"+name); err != nil {
						return err
					}
				}
			case "additionalProperties", "items", "not":
				if err := v.check(sub, at+"/"+k); err != nil {
					return err
				}
			case "anyOf", "allOf", "oneOf":
				for i, d := range sub.([]any) {
					if err := v.check(d, fmt.Sprintf("%s/%s/%d", at, k, i)); err != nil {
						return err
					}
				}
			default:
				return fmt.Errorf("%s: keyword %q is not implemented by the test's validator; implement it before trusting the agreement test", at, k)
			}
		}
		return nil
	default:
		return fmt.Errorf("%s: schema is a %T", at, s)
	}
}

// validate returns the first violation of s by x, or nil.
func (v *validator) validate(s any, x any, at string) error {
	switch s := s.(type) {
	case bool:
		if !s {
			return fmt.Errorf("%s: no value is allowed", at)
		}
		return nil
	case map[string]any:
		return v.validateObject(s, x, at)
	}
	return fmt.Errorf("bad schema %T", s)
}

func (v *validator) validateObject(s map[string]any, x any, at string) error {
	if ref, ok := s["$ref"].(string); ok {
		name, ok := strings.CutPrefix(ref, "#/$defs/")
		d, found := v.defs[name]
		if !ok || !found {
			return fmt.Errorf("%s: unresolvable $ref %q", at, ref)
		}
		if err := v.validate(d, x, at); err != nil {
			return err
		}
	}
	if t, ok := s["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, e := range t {
				types = append(types, e.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(x, t) }) {
			return fmt.Errorf("%s: %s is not of type %v", at, show(x), types)
		}
	}
	if c, ok := s["const"]; ok && !equal(c, x) {
		return fmt.Errorf("%s: %s is not %s", at, show(x), show(c))
	}
	if e, ok := s["enum"].([]any); ok && !slices.ContainsFunc(e, func(c any) bool { return equal(c, x) }) {
		return fmt.Errorf("%s: %s is not one of %s", at, show(x), show(e))
	}
	if n, isNum := number(x); isNum {
		if m, ok := number(s["minimum"]); ok && n < m {
			return fmt.Errorf("%s: %s is less than %s", at, show(x), show(s["minimum"]))
		}
		if m, ok := number(s["maximum"]); ok && n > m {
			return fmt.Errorf("%s: %s is more than %s", at, show(x), show(s["maximum"]))
		}
	}
	if p, ok := s["pattern"].(string); ok {
		if str, isStr := x.(string); isStr {
			if !v.res[p].MatchString(str) {
				return fmt.Errorf("%s: %s does not match %s", at, show(x), p)
			}
		}
	}
	if obj, isObj := x.(map[string]any); isObj {
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, present := obj[r.(string)]; !present {
					return fmt.Errorf("%s: %s is required", at, r)
				}
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, val := range obj {
			if ps, ok := props[k]; ok {
				if err := v.validate(ps, val, at+"."+k); err != nil {
					return err
				}
			} else if ap, ok := s["additionalProperties"]; ok {
				if err := v.validate(ap, val, at+"."+k); err != nil {
					return err
				}
			}
		}
	}
	if arr, isArr := x.([]any); isArr {
		if items, ok := s["items"]; ok {
			for i, e := range arr {
				if err := v.validate(items, e, fmt.Sprintf("%s.%d", at, i)); err != nil {
					return err
				}
			}
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			if err := v.validate(sub, x, at); err != nil {
				return err
			}
		}
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		if !slices.ContainsFunc(anyOf, func(sub any) bool { return v.validate(sub, x, at) == nil }) {
			return fmt.Errorf("%s: %s matches none of anyOf", at, show(x))
		}
	}
	if oneOf, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, sub := range oneOf {
			if v.validate(sub, x, at) == nil {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: %s matches %d of oneOf", at, show(x), n)
		}
	}
	if not, ok := s["not"]; ok && v.validate(not, x, at) == nil {
		return fmt.Errorf("%s: %s matches not", at, show(x))
	}
	return nil
}

func hasType(x any, t string) bool {
	switch x := x.(type) {
	case nil:
		return t == "null"
	case bool:
		return t == "boolean"
	case string:
		return t == "string"
	case []any:
		return t == "array"
	case map[string]any:
		return t == "object"
	case json.Number:
		if t == "number" {
			return true
		}
		r, ok := new(big.Rat).SetString(x.String())
		return t == "integer" && ok && r.IsInt()
	}
	return false
}

// equal is JSON equality: numbers compare by value.
func equal(a, b any) bool {
	na, aNum := a.(json.Number)
	nb, bNum := b.(json.Number)
	if aNum || bNum {
		if !aNum || !bNum {
			return false
		}
		ra, ok1 := new(big.Rat).SetString(na.String())
		rb, ok2 := new(big.Rat).SetString(nb.String())
		return ok1 && ok2 && ra.Cmp(rb) == 0
	}
	switch a := a.(type) {
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, equal)
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, va := range a {
			if vb, ok := b[k]; !ok || !equal(va, vb) {
				return false
			}
		}
		return true
	}
	return a == b
}

func show(x any) string {
	b, _ := json.Marshal(x)
	return string(b)
}

// number reads a JSON number.
func number(x any) (float64, bool) {
	switch x := x.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}
