package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/observer-dev/observer/internal/bus"
	"github.com/observer-dev/observer/internal/event"
)

var idA = strings.Repeat("a", 64)

func TestFilter(t *testing.T) {
	f, err := ParseFilter(url.Values{"type": {"signal,rename_exdev"}, "container": {idA[:12]}})
	if err != nil {
		t.Fatal(err)
	}
	in := &event.RenameExdev{Header: event.Header{Type: "rename_exdev", ContainerID: idA}}
	host := &event.RenameExdev{Header: event.Header{Type: "rename_exdev"}}
	other := &event.DaemonExit{Header: event.Header{Type: "daemon_exit", ContainerID: idA}}
	if !f.Match(in) || f.Match(host) || f.Match(other) {
		t.Errorf("filter %+v: match in=%v host=%v other=%v", f, f.Match(in), f.Match(host), f.Match(other))
	}
	for _, bad := range []string{"abc", strings.Repeat("a", 65)} {
		if _, err := ParseFilter(url.Values{"container": {bad}}); err == nil {
			t.Errorf("container=%q: want error", bad)
		}
	}
}

func TestEventsStreamAndShutdown(t *testing.T) {
	b := bus.New()
	s := New(Options{Bus: b, Metrics: http.NotFoundHandler(), Status: func() any { return map[string]string{"ok": "yes"} }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, Endpoint{Listener: ln, Trusted: true}) }()
	base := "http://" + ln.Addr().String()

	resp, err := http.Get(base + "/events?type=signal")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("content type %q", ct)
	}
	// The subscription exists once headers are flushed; publish until it is seen.
	go func() {
		for i := 0; i < 50; i++ {
			b.Publish(&event.RenameExdev{Header: event.Header{Type: "rename_exdev"}})
			b.Publish(&event.Signal{Header: event.Header{Type: "signal"}, Signal: "SIGPIPE"})
			time.Sleep(10 * time.Millisecond)
		}
	}()
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil || got["type"] != "signal" || got["signal"] != "SIGPIPE" {
		t.Errorf("first line %s (err %v), want the signal event", line, err)
	}

	st, err := http.Get(base + "/status")
	if err != nil || st.StatusCode != 200 {
		t.Fatalf("/status: %v %v", err, st)
	}
	st.Body.Close()
	bad, _ := http.Get(base + "/events?container=xyz")
	if bad.StatusCode != http.StatusBadRequest {
		t.Errorf("bad filter: status %d, want 400", bad.StatusCode)
	}
	bad.Body.Close()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel with a stream open")
	}
}

func TestEventStreamsAreBounded(t *testing.T) {
	b := bus.New()
	s := New(Options{Bus: b, Metrics: http.NotFoundHandler(), Status: func() any { return nil }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, Endpoint{Listener: ln, Trusted: true})
	url := "http://" + ln.Addr().String() + "/events"
	var open []*http.Response
	defer func() {
		for _, r := range open {
			r.Body.Close()
		}
	}()
	for i := 0; i < MaxStreams; i++ {
		resp, err := http.Get(url)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %v %v", i, err, resp)
		}
		open = append(open, resp)
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream %d: status %d, want 503", MaxStreams+1, resp.StatusCode)
	}
}

func TestParseFilterRefusesUnknownTypes(t *testing.T) {
	_, err := ParseFilter(url.Values{"type": {"signal,rename_exdv"}})
	if err == nil || !strings.Contains(err.Error(), `"rename_exdv"`) || !strings.Contains(err.Error(), "rename_exdev") {
		t.Fatalf("err = %v, want the unknown type named with the known ones", err)
	}
	for _, ty := range event.Types() {
		if _, err := ParseFilter(url.Values{"type": {ty}}); err != nil {
			t.Errorf("type %s: %v", ty, err)
		}
	}
}
