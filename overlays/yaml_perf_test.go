package overlays

import (
	"math/rand/v2"
	"testing"
)

// TestMatchPlain: matchPlain accepts exactly what the plain regexp does.
func TestMatchPlain(t *testing.T) {
	alphabet := []byte("aZ09_./=,:@+ -#'\"\\|\t\n{}[]!&*?%<>~`é")
	r := rand.New(rand.NewPCG(3, 4))
	cases := []string{"", ".", "./", "./x", ".x", "/", "_", "a", "0", "a b", "a:b", "-a", "é"}
	for range 200000 {
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		if got, want := matchPlain(s), plain.MatchString(s); got != want {
			t.Fatalf("matchPlain(%q) = %v, the regexp says %v", s, got, want)
		}
	}
}
