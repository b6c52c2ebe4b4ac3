// Package scenario is the guest side of the systemtest: on a booted node it
// reproduces each failure the observer exists for and checks what an
// operator sees, through Prometheus's HTTP API, the observer's /events and
// its CLI.
package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/observer-dev/observer/internal/server"
	"github.com/observer-dev/observer/internal/systemtest"
)

// Node is the guest as the scenarios see it.
type Node struct {
	Kernel, Release string
	Observer        string // the observer's --listen address (Prometheus scrapes it)
	// Socket is the observer's control socket: /events, /status and the CLI
	// need it (the TCP listener serves only /metrics, /healthz, /readyz).
	Socket     string
	Prometheus string // base URL of Prometheus's HTTP API
	Out        io.Writer

	mu     sync.Mutex
	events []Event
}

// Event is one /events line, kept generic: the scenarios read a few fields.
type Event map[string]any

// Str is a field as a string ("" when absent).
func (e Event) Str(k string) string {
	switch v := e[k].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// Num is a numeric field (0 when absent).
func (e Event) Num(k string) float64 {
	v, _ := e[k].(float64)
	return v
}

// Progress prints one progress line on the console.
func (n *Node) Progress(format string, args ...any) {
	fmt.Fprintf(n.Out, "%s%s\n", systemtest.ProgressPrefix, fmt.Sprintf(format, args...))
}

// Follow reads the observer's /events until ctx ends, reconnecting when the
// daemon restarts, and keeps every event.
func (n *Node) Follow(ctx context.Context) {
	for ctx.Err() == nil {
		c, err := n.client()
		var resp *http.Response
		if err == nil {
			resp, err = c.Do(ctx, http.MethodGet, "/events")
		}
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				var e Event
				if json.Unmarshal(sc.Bytes(), &e) == nil {
					n.mu.Lock()
					n.events = append(n.events, e)
					n.mu.Unlock()
				}
			}
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Mark is a position in the event log: WaitEvent looks only at later events.
func (n *Node) Mark() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.events)
}

// Events returns the events after mark that match.
func (n *Node) Events(mark int, match func(Event) bool) []Event {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Event
	for _, e := range n.events[min(mark, len(n.events)):] {
		if match(e) {
			out = append(out, e)
		}
	}
	return out
}

// WaitEvent waits up to d for an event after mark that matches.
func (n *Node) WaitEvent(mark int, d time.Duration, match func(Event) bool) (Event, bool) {
	deadline := time.Now().Add(d)
	for {
		if es := n.Events(mark, match); len(es) > 0 {
			return es[0], true
		}
		if time.Now().After(deadline) {
			return nil, false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Sh runs a command and returns its combined output, trimmed.
func Sh(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	out := strings.TrimSpace(string(b))
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return out, nil
}

// Docker runs the docker CLI.
func Docker(ctx context.Context, args ...string) (string, error) { return Sh(ctx, "docker", args...) }

// Get decodes one of the observer's JSON documents.
func (n *Node) Get(ctx context.Context, path string, v any) error {
	c, err := n.client()
	if err != nil {
		return err
	}
	return c.GetJSON(ctx, path, v)
}

// client reaches the observer over its control socket.
func (n *Node) client() (*server.Client, error) {
	return server.NewClient(server.UnixPrefix+n.Socket, "")
}

// SensorStatus is a sensor's line of /status.
type SensorStatus struct {
	Name        string `json:"name"`
	Mode        string `json:"mode"`
	Unavailable string `json:"unavailable"`
}

// Sensors waits up to d for every named sensor to attach (copyup and veth
// attach late, once dockerd has loaded overlay and veth) and returns
// "sensor: reason" for those that did not.
func (n *Node) Sensors(ctx context.Context, d time.Duration, names ...string) (unavailable string, err error) {
	deadline := time.Now().Add(d)
	for {
		var st struct {
			Sensors []SensorStatus `json:"sensors"`
		}
		if err := n.Get(ctx, "/status", &st); err != nil {
			return "", err
		}
		var missing []string
		for _, name := range names {
			found := false
			for _, s := range st.Sensors {
				if s.Name == name {
					found = true
					if s.Mode == "" {
						missing = append(missing, name+": "+s.Unavailable)
					}
				}
			}
			if !found {
				missing = append(missing, name+": not in /status")
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return strings.Join(missing, "; "), nil
		}
		time.Sleep(time.Second)
	}
}

// LogSensors prints how each sensor attached (or why not).
func (n *Node) LogSensors(ctx context.Context) {
	var st struct {
		Sensors []SensorStatus `json:"sensors"`
	}
	if err := n.Get(ctx, "/status", &st); err != nil {
		n.Progress("status: %v", err)
		return
	}
	for _, s := range st.Sensors {
		if s.Mode != "" {
			n.Progress("sensor %s: %s", s.Name, s.Mode)
		} else {
			n.Progress("sensor %s: unavailable: %s", s.Name, s.Unavailable)
		}
	}
}

// Sample is one series of a PromQL instant vector.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query through Prometheus's HTTP API.
func (n *Node) Query(ctx context.Context, q string) ([]Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := n.Prometheus + "/api/v1/query?query=" + url.QueryEscape(q)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("prometheus %s: %s", q, body.Error)
	}
	var out []Sample
	for _, r := range body.Data.Result {
		s := Sample{Labels: r.Metric}
		if len(r.Value) == 2 {
			str, _ := r.Value[1].(string)
			s.Value, _ = strconv.ParseFloat(str, 64)
		}
		out = append(out, s)
	}
	return out, nil
}

// WaitQuery polls q until it returns a sample whose value passes ok, for up
// to d (Prometheus scrapes every 2 s).
func (n *Node) WaitQuery(ctx context.Context, q string, d time.Duration, ok func(float64) bool) (Sample, error) {
	deadline := time.Now().Add(d)
	var last error
	for {
		ss, err := n.Query(ctx, q)
		if err != nil {
			last = err
		}
		for _, s := range ss {
			if ok(s.Value) {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			if last == nil {
				last = fmt.Errorf("no sample passed after %s (got %v)", d, ss)
			}
			return Sample{}, fmt.Errorf("PromQL %s: %w", q, last)
		}
		time.Sleep(time.Second)
	}
}

// WaitReady waits for each part of the node: the observer's HTTP endpoint,
// dockerd and Prometheus having scraped the observer.
func (n *Node) WaitReady(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, step := range []struct {
		what string
		ok   func() error
	}{
		{"observer /healthz", func() error {
			var ok json.RawMessage
			return n.Get(ctx, "/status", &ok)
		}},
		{"dockerd", func() error { _, err := Docker(ctx, "info", "--format", "{{.ServerVersion}}"); return err }},
		{"prometheus scraping the observer", func() error {
			ss, err := n.Query(ctx, `up{job="observer"} == 1`)
			if err == nil && len(ss) == 0 {
				err = errors.New("target not up yet")
			}
			return err
		}},
	} {
		for {
			err := step.ok()
			if err == nil {
				n.Progress("ready: %s", step.what)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %s: %w", step.what, d, err)
			}
			time.Sleep(time.Second)
		}
	}
	return nil
}

// ContainerID is the full id of a container by name.
func ContainerID(ctx context.Context, name string) (string, error) {
	return Docker(ctx, "inspect", "--format", "{{.Id}}", name)
}

// Short is a container's metric label: its 12-character short id.
func Short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// MiB formats a byte count.
func MiB(b float64) string { return strconv.FormatFloat(b/(1<<20), 'f', -1, 64) + " MiB" }

// fileExists reports whether path exists.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
