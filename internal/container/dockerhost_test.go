package container

import (
	"errors"
	"testing"
)

func TestParseDockerHost(t *testing.T) {
	for _, tc := range []struct {
		host, tls string
		want      string // endpoint.String(), or "" when an error is expected
		tlsErr    bool
	}{
		{host: "", want: "unix:///var/run/docker.sock"},
		{host: "  ", want: "unix:///var/run/docker.sock"},
		{host: "unix:///run/user/1000/docker.sock", want: "unix:///run/user/1000/docker.sock"},
		{host: "unix://", want: "unix:///var/run/docker.sock"},
		{host: "tcp://10.0.0.1:2375", want: "tcp://10.0.0.1:2375"},
		{host: "tcp://10.0.0.1", want: "tcp://10.0.0.1:2375"},
		{host: "tcp://:2375", want: "tcp://localhost:2375"},
		{host: "tcp://[::1]:2375", want: "tcp://[::1]:2375"},
		{host: "tcp://host:2375/prefix/", want: "tcp://host:2375/prefix"},
		{host: "TCP://host:1", want: "tcp://host:1"},
		{host: "tcp://host:2376", tls: "1", tlsErr: true},
		{host: "https://host:2376", tlsErr: true},
		{host: "unix:///var/run/docker.sock", tls: "1", want: "unix:///var/run/docker.sock"},
		{host: "ssh://user@host"},
		{host: "npipe:////./pipe/docker_engine"},
		{host: "fd://"},
		{host: "/var/run/docker.sock"},
		{host: "tcp://host:"},
		{host: "tcp://user@host:1"},
		{host: "tcp://host:1?x=y"},
	} {
		ep, err := parseDockerHost(tc.host, tc.tls)
		switch {
		case tc.tlsErr:
			if !errors.Is(err, errTLSUnsupported) {
				t.Errorf("parseDockerHost(%q, %q) err = %v, want TLS unsupported", tc.host, tc.tls, err)
			}
		case tc.want == "":
			if err == nil {
				t.Errorf("parseDockerHost(%q) = %v, want error", tc.host, ep)
			}
		case err != nil:
			t.Errorf("parseDockerHost(%q): %v", tc.host, err)
		case ep.String() != tc.want:
			t.Errorf("parseDockerHost(%q) = %v, want %v", tc.host, ep, tc.want)
		}
	}
}
