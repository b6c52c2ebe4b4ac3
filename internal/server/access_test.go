package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/observer-dev/observer/internal/bus"
)

// serveTest serves a server with a private capture route on eps until the test ends.
func serveTest(t *testing.T, ready func() error, eps ...Endpoint) {
	t.Helper()
	s := New(Options{
		Bus: bus.New(), Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "observer_up 1") }),
		Status: func() any { return map[string]string{"ok": "yes"} },
		Routes: map[string]http.Handler{"POST /capture": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "captured") })},
		Ready:  ready, Socket: "/run/test.sock",
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, eps...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

func status(t *testing.T, c *http.Client, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// Without a web config, a network listener serves what Prometheus and probes
// need, and refuses the rest with a message that says how to get in.
func TestNetworkListenerOpensOnlyPublicRoutes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var notReady error = errors.New("sensors starting")
	serveTest(t, func() error { return notReady }, Endpoint{Listener: ln})
	base := "http://" + ln.Addr().String()
	for _, p := range []string{"/metrics", "/healthz"} {
		if code, _ := status(t, http.DefaultClient, "GET", base+p); code != 200 {
			t.Errorf("GET %s: %d, want 200", p, code)
		}
	}
	if code, body := status(t, http.DefaultClient, "GET", base+"/readyz"); code != 503 || !strings.Contains(body, "sensors starting") {
		t.Errorf("/readyz before ready: %d %q, want 503 with the reason", code, body)
	}
	notReady = nil
	if code, _ := status(t, http.DefaultClient, "GET", base+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready: %d", code)
	}
	for _, r := range [][2]string{{"GET", "/events"}, {"GET", "/status"}, {"POST", "/capture?stream=1"}, {"GET", "/residue"}} {
		code, body := status(t, http.DefaultClient, r[0], base+r[1])
		if code != http.StatusForbidden || !strings.Contains(body, "/run/test.sock") || !strings.Contains(body, "--web.config.file") {
			t.Errorf("%s %s: %d %q, want 403 naming the socket and --web.config.file", r[0], r[1], code, body)
		}
	}
}

// The control socket is 0600 and serves every route; a stale one is
// replaced, a live one is another daemon's.
func TestUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "observer.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %v %v, want a 0600 socket", st.Mode(), err)
	}
	if _, err := ListenUnix(path); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("second listen on a live socket: %v, want refused", err)
	}
	serveTest(t, nil, Endpoint{Listener: ln, Trusted: true})
	c, err := NewClient(UnixPrefix+path, "")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]string
	if err := c.GetJSON(context.Background(), "/status", &doc); err != nil || doc["ok"] != "yes" {
		t.Fatalf("/status over the socket: %v %v", doc, err)
	}
	resp, err := c.Do(context.Background(), "POST", "/capture")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /capture over the socket: %v %v", resp, err)
	}
	resp.Body.Close()

	// A socket file whose daemon died (no listener) is taken over.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	l2, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l2.(*net.UnixListener).SetUnlinkOnClose(false)
	l2.Close()
	l3, err := ListenUnix(stale)
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	l3.Close()

	missing, _ := NewClient(UnixPrefix+filepath.Join(t.TempDir(), "none.sock"), "")
	if err := missing.GetJSON(context.Background(), "/status", &doc); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("no socket: %v, want ErrNoDaemon", err)
	}
}

// TLS and basic auth from a web config, checked with a real TLS client.
func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	caFile := writeCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "web.yml")
	os.WriteFile(cfg, []byte("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\nbasic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600)
	if ok, err := WebConfigAuthenticates(cfg); !ok || err != nil {
		t.Fatalf("WebConfigAuthenticates = %v %v, want true", ok, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTest(t, nil, Endpoint{Listener: ln, WebConfig: cfg})
	addr := ln.Addr().String()

	// Plain HTTP to the TLS port gets nothing of the daemon's.
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(body), "observer_up") {
			t.Errorf("plain HTTP to the TLS listener: %d %q", resp.StatusCode, body)
		}
	}
	pool := x509.NewCertPool()
	pemData, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(pemData)
	tc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + addr
	for _, p := range []string{"/metrics", "/events", "/status"} {
		if code, _ := status(t, tc, "GET", base+p); code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401", p, code)
		}
	}
	req, _ := http.NewRequest("GET", base+"/status", nil)
	req.SetBasicAuth("alice", "wrong")
	if resp, err := tc.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: %v %v, want 401", resp, err)
	} else {
		resp.Body.Close()
	}

	// The CLI's client: user in the URL, password from the environment.
	t.Setenv(PasswordEnv, "s3cret")
	c, err := NewClient("https://alice@"+addr, caFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]string
	if err := c.GetJSON(context.Background(), "/status", &doc); err != nil || doc["ok"] != "yes" {
		t.Fatalf("/status with credentials: %v %v", doc, err)
	}
	resp, err := c.Do(context.Background(), "POST", "/capture")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST /capture with credentials: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := NewClient("https://alice@"+addr, filepath.Join(dir, "key.pem")); err == nil {
		t.Error("a CA file without certificates: want an error")
	}
}

// TLS alone proves nothing about the client: the private routes stay closed.
func TestWebConfigTLSWithoutUsersKeepsPrivateRoutesClosed(t *testing.T) {
	dir := t.TempDir()
	caFile := writeCert(t, dir)
	cfg := filepath.Join(dir, "web.yml")
	os.WriteFile(cfg, []byte("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"), 0o600)
	if ok, err := WebConfigAuthenticates(cfg); ok || err != nil {
		t.Fatalf("WebConfigAuthenticates = %v %v, want false", ok, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveTest(t, nil, Endpoint{Listener: ln, WebConfig: cfg})
	c, err := NewClient("https://someone:x@"+ln.Addr().String(), caFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]string
	if err := c.GetJSON(context.Background(), "/status", &doc); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("/status over TLS without users: %v, want 403", err)
	}
	if resp, err := c.Do(context.Background(), "GET", "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/metrics over TLS: %v %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 as cert.pem and
// key.pem in dir and returns the certificate's path (its own CA).
func writeCert(t *testing.T, dir string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "observer test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "cert.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile
}
