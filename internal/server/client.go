package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// maxJSONResponse bounds what a subcommand reads from the daemon.
const maxJSONResponse = 64 << 20

// PasswordEnv holds the basic auth password for a daemon URL with a user
// (https://USER@HOST:PORT): never on the command line, where ps shows it.
const PasswordEnv = "OBSERVER_PASSWORD"

// ClientFlags are the flags every subcommand that talks to a daemon shares.
type ClientFlags struct {
	Addr   string
	CAFile string
}

// AddClientFlags registers --listen and --ca-file on fs.
func AddClientFlags(fs *flag.FlagSet) *ClientFlags {
	c := &ClientFlags{}
	fs.StringVar(&c.Addr, "listen", UnixPrefix+DefaultSocket, "the daemon: unix:`PATH` of its socket, HOST:PORT, or https://[USER@]HOST:PORT (password from $"+PasswordEnv+")")
	fs.StringVar(&c.CAFile, "ca-file", "", "with https://: the `file` of CA certificates that signed the daemon's certificate (default: the system's)")
	return c
}

// Client reaches a running daemon over its unix socket or over the network.
type Client struct {
	addr       string // as given, for messages
	base       string // URL prefix
	user, pass string
	http       *http.Client
}

// NewClient checks the flags' address; nothing is dialled yet.
func (f *ClientFlags) NewClient() (*Client, error) { return NewClient(f.Addr, f.CAFile) }

// NewClient makes a client for addr (see AddClientFlags for its forms).
func NewClient(addr, caFile string) (*Client, error) {
	c := &Client{addr: addr}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	switch {
	case strings.HasPrefix(addr, UnixPrefix):
		path := strings.TrimPrefix(addr, UnixPrefix)
		if path == "" {
			return nil, fmt.Errorf("-listen %q: want unix:PATH", addr)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		c.base = "http://observer"
	case strings.HasPrefix(addr, "http://"), strings.HasPrefix(addr, "https://"):
		u, err := url.Parse(addr)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("-listen %q: want http(s)://[USER@]HOST:PORT", addr)
		}
		if u.User != nil {
			c.user = u.User.Username()
			c.pass, _ = u.User.Password()
			if c.pass == "" {
				c.pass = os.Getenv(PasswordEnv)
			}
		}
		c.base = u.Scheme + "://" + u.Host
	default:
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("-listen %q: want unix:PATH, HOST:PORT or https://HOST:PORT", addr)
		}
		c.base = "http://" + addr
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-ca-file %s: no PEM certificates", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	c.http = &http.Client{Transport: tr}
	return c, nil
}

// Addr is the address the client was made for.
func (c *Client) Addr() string { return c.addr }

// ErrNoDaemon says nothing listens at the address: the caller may do the work
// itself (a standalone scan or capture). Refused access is not this error.
var ErrNoDaemon = errors.New("no daemon")

// Do sends a request for path (with its query) to the daemon.
func (c *Client) Do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
		return nil, fmt.Errorf("%w at %s", ErrNoDaemon, c.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("ask the daemon at %s: %w", c.addr, err)
	}
	return resp, nil
}

// GetJSON asks the daemon for one of its JSON documents (e.g. /residue,
// /latency) and decodes it into v.
func (c *Client) GetJSON(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, http.MethodGet, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ResponseError(resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONResponse)).Decode(v); err != nil {
		return fmt.Errorf("decode %s from %s: %w", path, c.addr, err)
	}
	return nil
}

// ResponseError describes a refusal, with the start of what the daemon said.
func ResponseError(resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("%s %s: the daemon answered %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, strings.TrimSpace(string(msg)))
}
