package fleet

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
)

// Patterns of secret material. They are deliberately broad: meshfleet's
// output goes to git, and nothing it writes legitimately holds a key or a
// token.
var (
	privateKeyBlock = regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*-----`)
	jwtLike         = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	knownToken      = regexp.MustCompile(`\b(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|(AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|sk_live_[0-9A-Za-z]{20,}|sha256~[A-Za-z0-9_-]{40,})`)
	// A kubeconfig or similar credential line with a literal value (a
	// template placeholder such as "{{ .token }}" is not a value).
	credentialLine = regexp.MustCompile(`(?mi)^[ \t-]*"?(token|client-key-data|client-key|password|id-token|refresh-token|access-token)"?[ \t]*:[ \t]*("?)([^"{\s][^\n]*)$`)
	urlUserinfo    = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*)://([^/?#\s@]*)@`)
	tokenQuery     = regexp.MustCompile(`(?i)[?&;](access_token|token|private_token|id_token|api_key|apikey|api-key|key|secret|client_secret|password|passwd|pwd|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential|auth|authorization|code|sas|sv|se|sp)=`)
	base64Run      = regexp.MustCompile(`[A-Za-z0-9+/]{40,}={0,2}`)
)

// SecretMaterial reports what kind of secret material s holds: a private
// key, a token, a credential line of a kubeconfig, or a URL with
// credentials or credential-like query parameters; "" if none. Base64
// runs in s are decoded and looked at once more.
func SecretMaterial(s string) string {
	if what := URLCredentials(s); what != "" {
		return what
	}
	return keyMaterial(s)
}

// keyMaterial is [SecretMaterial] without the URL checks.
func keyMaterial(s string) string {
	if what := secretIn(s); what != "" {
		return what
	}
	for _, run := range base64Run.FindAllString(s, 16) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
			if b, err := enc.DecodeString(run); err == nil {
				if what := secretIn(string(b)); what != "" {
					return what + " (base64-encoded)"
				}
				break
			}
		}
	}
	return ""
}

func secretIn(s string) string {
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

// URLCredentials reports whether a URL in s carries credentials: a
// password in its userinfo, any userinfo in an http(s) URL (a token as the
// user name), or a credential-like query parameter. A user name alone,
// as in ssh://git@host/repo, is not a credential.
func URLCredentials(s string) string {
	for _, m := range urlUserinfo.FindAllStringSubmatch(s, -1) {
		scheme, info := strings.ToLower(m[1]), m[2]
		if strings.Contains(info, ":") {
			return "a URL with a password"
		}
		if scheme == "http" || scheme == "https" || scheme == "oci" {
			return "a URL with credentials (userinfo)"
		}
	}
	if strings.Contains(s, "://") && tokenQuery.MatchString(s) {
		return "a URL with a credential-like query parameter"
	}
	if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			return "a URL with a password"
		}
	}
	return ""
}
