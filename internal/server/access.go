package server

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v2"
	"golang.org/x/sys/unix"
)

// DefaultSocket is the control socket every daemon listens on unless told
// otherwise, and where the CLI looks for it: mode 0600, so only root (or the
// daemon's own user) reaches /events, /status, /residue, /latency and captures.
const DefaultSocket = "/run/observer/observer.sock"

// UnixPrefix marks a unix socket in a --listen address.
const UnixPrefix = "unix:"

// publicPaths are served to anyone who reaches a network listener: what
// Prometheus scrapes and what probes ask (the exporter convention). Every other
// route describes the host's processes and paths or changes state (captures).
var publicPaths = map[string]bool{"/metrics": true, "/healthz": true, "/readyz": true}

// Public tells whether path is served on a network listener without credentials.
func Public(path string) bool { return publicPaths[path] }

// Endpoint is one listener and who may use what on it.
type Endpoint struct {
	Listener net.Listener
	// Trusted listeners serve every route without credentials: the 0600 unix
	// socket, whose file mode is the access control.
	Trusted bool
	// WebConfig is an exporter-toolkit web config file (TLS, basic auth) for a
	// network listener; "" serves plain HTTP.
	WebConfig string
}

// Forbidden is the answer to a private route asked over the network without
// credentials; it says how to get in.
func Forbidden(socket string) string {
	how := "the daemon's unix socket (root)"
	if socket != "" {
		how = "the unix socket " + socket + " (root)"
	}
	return "forbidden: on a network listener only /metrics, /healthz and /readyz are open; " +
		"use " + how + ", or basic auth / client certificates from --web.config.file"
}

// gate serves the private routes on a network listener only to clients the
// web config authenticated (exporter-toolkit has checked the credentials by
// the time the request gets here).
func gate(next http.Handler, webConfig, forbidden string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Public(r.URL.Path) || authenticated(r, webConfig) {
			next.ServeHTTP(w, r)
			return
		}
		http.Error(w, forbidden, http.StatusForbidden)
	})
}

func authenticated(r *http.Request, webConfig string) bool {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true // a client certificate the web config's client_ca verified
	}
	if _, _, ok := r.BasicAuth(); !ok || webConfig == "" {
		return false
	}
	// The toolkit rejects wrong credentials only while the file lists users; it
	// rereads the file on every request, so this does too.
	users, err := basicAuthUsers(webConfig)
	return err == nil && users > 0
}

// WebConfigAuthenticates tells whether a web config file makes clients prove
// who they are (basic auth users or required client certificates): without
// that, TLS alone opens no private route.
func WebConfigAuthenticates(path string) (bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	var c struct {
		TLS struct {
			ClientAuth string `yaml:"client_auth_type"`
		} `yaml:"tls_server_config"`
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return len(c.Users) > 0 || c.TLS.ClientAuth == "RequireAndVerifyClientCert", nil
}

func basicAuthUsers(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var c struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil {
		return 0, err
	}
	return len(c.Users), nil
}

// ListenUnix listens on a unix socket that only its owner may connect to
// (mode 0600). A socket left behind by a daemon that died is replaced; one
// that still answers is another daemon's and is an error.
func ListenUnix(path string) (net.Listener, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("socket directory: %w", err)
		}
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another daemon is listening on it", path)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	// The umask makes bind create the socket 0600: a chmod after it would
	// leave a moment in which anyone could connect.
	old := unix.Umask(0o177)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Listen opens a --listen address: HOST:PORT (TCP) or unix:PATH (a 0600
// socket, trusted).
func Listen(addr string) (ln net.Listener, trusted bool, err error) {
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		ln, err = ListenUnix(path)
		return ln, true, err
	}
	ln, err = net.Listen("tcp", addr)
	return ln, false, err
}
