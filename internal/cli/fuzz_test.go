package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spf13/pflag"
)

// FuzzArgoCDParameters feeds ARGOCD_APP_PARAMETERS to the cmp flags: it
// never panics, sets only meshfleet's parameters to exactly the strings
// given, and its errors are one line.
func FuzzArgoCDParameters(f *testing.F) {
	for _, s := range []string{
		`[{"name":"cluster","string":"west"}]`,
		`[{"name":"fleet","string":"fleets/prod.yaml"},{"name":"cluster","string":"east"}]`,
		`[{"name":"clustr","string":"west"}]`,
		`[{"name":"cluster","array":["a","b"]}]`,
		`[{"name":"cluster","map":{"a":"b"}}]`,
		`[{"name":"cluster\nmeshfleet: forged","string":"x"}]`,
		`[{"name":"cluster","string":"a\u2028b"}]`,
		`{}`, `[`, `null`, `[null]`, `[{"name":1}]`, "[{\"name\":\"\xff\"}]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		fs := pflag.NewFlagSet("cmp", pflag.ContinueOnError)
		file := fs.StringP("fleet", "f", "fleet.yaml", "")
		cluster := fs.String("cluster", "", "")
		err := cmpParameters(fs, raw)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r\u2028\u2029\u0085") || !utf8.ValidString(msg) {
				t.Fatalf("error %q is not one line of valid UTF-8", msg)
			}
			return
		}
		if raw == "" {
			return // not set
		}
		var params []struct {
			Name   string  `json:"name"`
			String *string `json:"string"`
		}
		if err := json.Unmarshal([]byte(raw), &params); err != nil {
			t.Fatalf("accepted %q, which is not a parameter list: %v", raw, err)
		}
		want := map[string]string{"fleet": "fleet.yaml", "cluster": ""}
		for _, p := range params {
			if _, ok := want[p.Name]; !ok || p.String == nil {
				t.Fatalf("accepted parameter %q of %q", p.Name, raw)
			}
			want[p.Name] = *p.String
		}
		if *file != want["fleet"] || *cluster != want["cluster"] {
			t.Fatalf("fleet, cluster = %q, %q from %q; want %q, %q", *file, *cluster, raw, want["fleet"], want["cluster"])
		}
	})
}
