package container

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// defaultDockerHost is what the docker CLI uses when DOCKER_HOST is unset.
const defaultDockerHost = "unix:///var/run/docker.sock"

// errTLSUnsupported means the endpoint wants TLS, which this small client does
// not speak; enrichment is disabled rather than failing the daemon.
var errTLSUnsupported = errors.New("docker engine over TLS is not supported")

// endpoint is where the Engine API listens.
type endpoint struct {
	network string // "unix" or "tcp"
	address string // socket path or host:port
	base    string // optional URL path prefix from tcp://host:port/prefix
}

func (e endpoint) String() string { return e.network + "://" + e.address + e.base }

// parseDockerHost reads a DOCKER_HOST value the way the docker CLI does:
// surrounding space is ignored, empty means the default unix socket, tcp://
// without a host or port means localhost:2375. tlsVerify is DOCKER_TLS_VERIFY;
// the CLI turns TLS on whenever it is non-empty.
func parseDockerHost(host, tlsVerify string) (endpoint, error) {
	host = strings.TrimSpace(host)
	if host == "" {
		host = defaultDockerHost
	}
	scheme, rest, ok := strings.Cut(host, "://")
	if !ok {
		return endpoint{}, fmt.Errorf("DOCKER_HOST %q: want unix:///path or tcp://host:port", host)
	}
	switch strings.ToLower(scheme) {
	case "unix":
		if rest == "" {
			rest = strings.TrimPrefix(defaultDockerHost, "unix://")
		}
		return endpoint{network: "unix", address: rest}, nil
	case "tcp", "http":
		if tlsVerify != "" {
			return endpoint{}, errTLSUnsupported
		}
		return parseTCP(host, rest)
	case "https":
		return endpoint{}, errTLSUnsupported
	default:
		return endpoint{}, fmt.Errorf("DOCKER_HOST %q: unsupported scheme %q (want unix:// or tcp://)", host, scheme)
	}
}

func parseTCP(host, rest string) (endpoint, error) {
	u, err := url.Parse("tcp://" + rest)
	if err != nil {
		return endpoint{}, fmt.Errorf("DOCKER_HOST %q: %w", host, err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("DOCKER_HOST %q: want tcp://host:port[/path]", host)
	}
	h, port := u.Hostname(), u.Port()
	if h == "" {
		h = "localhost"
	}
	if port == "" {
		if strings.HasSuffix(u.Host, ":") {
			return endpoint{}, fmt.Errorf("DOCKER_HOST %q: empty port", host)
		}
		port = "2375"
	}
	return endpoint{network: "tcp", address: net.JoinHostPort(h, port), base: strings.TrimSuffix(u.Path, "/")}, nil
}
