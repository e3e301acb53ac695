package broker

import (
	"errors"
	"net"
	"testing"
)

func TestAdvertisedHost(t *testing.T) {
	name := func() (string, error) { return "box1", nil }
	none := func() (string, error) { return "", errors.New("no name") }
	for _, tc := range []struct {
		host  string
		bound net.IP
		name  func() (string, error)
		want  string
	}{
		{"broker.example", net.IPv4zero, name, "broker.example"},
		{"", net.ParseIP("127.0.0.2"), name, "127.0.0.2"},
		{"0.0.0.0", net.ParseIP("127.0.0.1"), name, "127.0.0.1"},
		{"", net.IPv4zero, name, "box1"},
		{"::", net.IPv6unspecified, name, "box1"},
		{"", net.IPv4zero, none, "localhost"},
	} {
		if got := advertisedHost(tc.host, tc.bound, tc.name); got != tc.want {
			t.Errorf("advertisedHost(%q, %v) = %q, want %q", tc.host, tc.bound, got, tc.want)
		}
	}
}
