package main

import "testing"

func TestHostMatches(t *testing.T) {
	for _, c := range []struct {
		hosts []any
		host  string
		want  bool
	}{
		{[]any{"istiod.cp.example.net"}, "istiod.cp.example.net", true},
		{[]any{"external-istiod/istiod.cp.example.net"}, "istiod.cp.example.net", true},
		{[]any{"*"}, "istiod.cp.example.net", true},
		{[]any{"*.example.net"}, "istiod.cp.example.net", true},
		{[]any{"*.example.net"}, "example.net", false},
		{[]any{"other-istiod.cp.example.net"}, "istiod.cp.example.net", false},
		{nil, "istiod.cp.example.net", false},
	} {
		if got := hostMatches(c.hosts, c.host); got != c.want {
			t.Errorf("hostMatches(%v, %s) = %v, want %v", c.hosts, c.host, got, c.want)
		}
	}
}
