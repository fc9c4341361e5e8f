package fleet

import (
	"encoding/base64"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
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

// Every string meshfleet writes passes through [SecretMaterial], so each
// pattern is guarded by a cheap test of something its matches cannot do
// without (a literal, a length): the regular expressions run only on the
// few strings that pass it, and the answer is the same as without the
// guards (TestSecretGuards and FuzzSecretGuards compare the two).

// tokenPrefixes are the literals knownToken's alternatives start with.
var tokenPrefixes = []string{"gh", "github_pat_", "glpat-", "xox", "AKIA", "ASIA", "AIza", "sk_live_", "sha256~"}

// mayHoldToken is a necessary condition for knownToken.
func mayHoldToken(s string) bool {
	if len(s) < 15 { // the shortest match: "xoxa-" and ten characters
		return false
	}
	for _, p := range tokenPrefixes {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// credentialKeys are credentialLine's keywords.
var credentialKeys = []string{"token", "client-key", "password", "id-token", "refresh-token", "access-token"}

// mayHoldCredentialLine is a necessary condition for credentialLine: a
// line that starts, after blanks, dashes and a quote, with one of its
// keywords in any case. Outside ASCII, Unicode case folding makes 'ſ' an
// 's' and the Kelvin sign a 'k', so such strings always go to the
// regular expression.
func mayHoldCredentialLine(s string) bool {
	if !strings.Contains(s, ":") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimLeft(line, " \t-")
		line = strings.TrimPrefix(line, `"`)
		for _, k := range credentialKeys {
			if len(line) >= len(k) && strings.EqualFold(line[:len(k)], k) {
				return true
			}
		}
	}
	return false
}

// hasBase64Run is a necessary and sufficient condition for base64Run.
func hasBase64Run(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
			if run++; run >= 40 {
				return true
			}
		default:
			run = 0
		}
	}
	return false
}

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
	if !hasBase64Run(s) {
		return ""
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
	case strings.Contains(s, "-----BEGIN ") && privateKeyBlock.MatchString(s):
		return "a PEM private key"
	case strings.Contains(s, "eyJ") && jwtLike.MatchString(s):
		return "a JSON Web Token"
	case mayHoldToken(s) && knownToken.MatchString(s):
		return "an access token"
	case mayHoldCredentialLine(s) && credentialLine.MatchString(s):
		return "a credential (token, key or password) in a kubeconfig-like text"
	}
	return ""
}

// userinfoCredentials reports a URL in s whose userinfo holds a
// password, or any userinfo in an http(s) or OCI URL.
func userinfoCredentials(s string) string {
	for _, m := range urlUserinfo.FindAllStringSubmatch(s, -1) {
		scheme, info := strings.ToLower(m[1]), m[2]
		if strings.Contains(info, ":") {
			return "a URL with a password"
		}
		if scheme == "http" || scheme == "https" || scheme == "oci" {
			return "a URL with credentials (userinfo)"
		}
	}
	return ""
}

// URLCredentials reports whether a URL in s carries credentials: a
// password in its userinfo, any userinfo in an http(s) URL (a token as the
// user name), or a credential-like query parameter. A user name alone,
// as in ssh://git@host/repo, is not a credential.
func URLCredentials(s string) string {
	// Userinfo needs an '@' (for url.Parse too), and a query parameter
	// a '?', '&' or ';' and a '='.
	at := strings.Contains(s, "@")
	if at {
		if what := userinfoCredentials(s); what != "" {
			return what
		}
	}
	if strings.Contains(s, "://") && strings.ContainsAny(s, "?&;") && strings.Contains(s, "=") && tokenQuery.MatchString(s) {
		return "a URL with a credential-like query parameter"
	}
	if !at {
		return ""
	}
	if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.User != nil {
		if _, hasPassword := u.User.Password(); hasPassword {
			return "a URL with a password"
		}
	}
	return ""
}
