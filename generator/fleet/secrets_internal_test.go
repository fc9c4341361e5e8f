package fleet

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
)

// unguardedSecretMaterial is SecretMaterial as the patterns alone define
// it: every regular expression on every string, no guards.
func unguardedSecretMaterial(s string) string {
	if what := userinfoCredentials(s); what != "" {
		return what
	}
	if strings.Contains(s, "://") && tokenQuery.MatchString(s) {
		return "a URL with a credential-like query parameter"
	}
	if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			return "a URL with a password"
		}
	}
	unguardedIn := func(s string) string {
		switch {
		case privateKeyBlock.MatchString(s):
			return "a PEM private key"
		case jwtLike.MatchString(s):
			return "a JSON Web Token"
		case knownToken.MatchString(s):
			return "an access token"
		case credentialLine.MatchString(s):
			return "a credential (token, key or password) in a kubeconfig-like text"
		}
		return ""
	}
	if what := unguardedIn(s); what != "" {
		return what
	}
	for _, run := range base64Run.FindAllString(s, 16) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
			if b, err := enc.DecodeString(run); err == nil {
				if what := unguardedIn(string(b)); what != "" {
					return what + " (base64-encoded)"
				}
				break
			}
		}
	}
	return ""
}

// secretSamples hit every pattern, near misses of every guard, and the
// case folding outside ASCII that the credential guard must not miss.
var secretSamples = []string{
	"", "istio-system", "https://charts.example.com/istio", "ssh://git@github.com/org/repo",
	"https://user@example.com/", "https://user:pw@example.com/", "oci://tok@registry.example.com/x",
	"user:pw@host", "//user:pw@host/x", " http://u:p@h ", "https://example.com/?token=x", "https://example.com/?Token=x",
	"https://example.com/?tokens=x", "example.com/?token=x",
	"-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----", "-----BEGIN CERTIFICATE-----",
	"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", "eyJhbGc.eyJ", "ghp_abcdefghijklmnopqrstuvwxyz", "gho_abc",
	"github_pat_abcdefghijklmnopqrstuvwxyz", "glpat-abcdefghijklmnopqrstuvwxyz", "xoxb-1234567890", "xoxb-123456789",
	"AKIAABCDEFGHIJKLMNOP", "ASIAABCDEFGHIJKLMNO", "AIza" + strings.Repeat("A", 35), "sk_live_" + strings.Repeat("a", 20),
	"sha256~" + strings.Repeat("a", 40), "xghp_abcdefghijklmnopqrstuvwxyz",
	"token: abc", "TOKEN: abc", "  - password: hunter2", `"client-key-data": "abc"`, "token: {{ .token }}",
	"id-token:x", "refresh-TOKEN :x", "tokenx: abc", "passwd: abc",
	"paſsword: hunter2", "client-\u212aey: abc", "client-Key: abc", "ToKeN: \u00e9",
	"x\ntoken: abc\ny", "token\n: abc", "a: b\n -- \"Refresh-Token\": y", "-\"id-token\" : v", "x token: abc",
	"kubeconfig of c1: istioctl create-remote-secret --server=https://c1:6443 --secret-name=reader-token",
	"https://h/p?x=1&token=2", "https://h/p;sig=2", "https://h/p?x=1", "see https://h/?code=1",
	base64.StdEncoding.EncodeToString([]byte("-----BEGIN EC PRIVATE KEY-----")),
	base64.RawStdEncoding.EncodeToString([]byte("password: hunter2hunter2hunter2")),
	base64.StdEncoding.EncodeToString([]byte("password: hunter2hunter2hunter2")),
	strings.Repeat("A", 39), strings.Repeat("A", 40), strings.Repeat("+/", 30) + "==",
	"cluster.local/ns/istio-system/sa/istiod", "spiffe://cluster.local/ns/a/sa/b",
}

// TestSecretGuards checks that the guards in front of the patterns change
// no answer of SecretMaterial.
func TestSecretGuards(t *testing.T) {
	t.Parallel()
	for _, s := range secretSamples {
		if got, want := SecretMaterial(s), unguardedSecretMaterial(s); got != want {
			t.Errorf("SecretMaterial(%q) = %q, without guards %q", s, got, want)
		}
	}
}

func FuzzSecretGuards(f *testing.F) {
	for _, s := range secretSamples {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := SecretMaterial(s), unguardedSecretMaterial(s); got != want {
			t.Errorf("SecretMaterial(%q) = %q, without guards %q", s, got, want)
		}
	})
}
