package container

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"
)

const (
	testID1 = "3f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a49382716f5e4d3c2b1a0f9e8d7c6"
	testID2 = "9b2e4c6a8d0f1e3c5a7b9d1f3e5c7a9b1d3f5e7c9a1b3d5f7e9c1a3b5d7f9e1c"
)

// fakeEngine serves a scripted Engine API on a unix socket in a temp dir.
func fakeEngine(t *testing.T, mux *http.ServeMux) endpoint {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return endpoint{network: "unix", address: sock}
}

func engineMux(events chan any) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/json", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`[{"Id":"` + testID1 + `","Names":["/web"],"Image":"nginx:1"},{"Id":"bogus","Names":["/x"]}]`))
	})
	mux.HandleFunc("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testID2 {
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
			return
		}
		w.Write([]byte(`{"Id":"` + testID2 + `","Name":"/db","Config":{"Image":"postgres:16"}}`))
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("filters"); got != `{"type":["container"]}` {
			http.Error(w, "bad filter "+got, http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		enc := json.NewEncoder(w)
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					return
				}
				enc.Encode(ev)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	})
	return mux
}

func TestEngineListInspect(t *testing.T) {
	e := newEngine(fakeEngine(t, engineMux(nil)))
	ctx := context.Background()

	got, err := e.list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (Container{ID: testID1, Name: "web", Image: "nginx:1"}) {
		t.Fatalf("list = %+v", got)
	}

	c, err := e.inspect(ctx, testID2)
	if err != nil {
		t.Fatal(err)
	}
	if c != (Container{ID: testID2, Name: "db", Image: "postgres:16"}) {
		t.Fatalf("inspect = %+v", c)
	}
	if _, err := e.inspect(ctx, testID1); !errors.Is(err, errNoSuchContainer) {
		t.Fatalf("inspect unknown: err = %v, want errNoSuchContainer", err)
	}
	if _, err := e.inspect(ctx, "../../x"); err == nil {
		t.Fatal("inspect accepted a non-id")
	}
}

func TestEngineEvents(t *testing.T) {
	events := make(chan any, 4)
	e := newEngine(fakeEngine(t, engineMux(events)))
	events <- map[string]any{"Type": "container", "Action": "start", "Actor": map[string]any{"ID": testID1, "Attributes": map[string]string{"name": "web", "image": "nginx:1"}}}
	events <- map[string]any{"status": "destroy", "id": testID2} // pre-1.22 shape
	events <- map[string]any{"Type": "network", "Action": "connect"}
	close(events)

	var got []engineEvent
	connected := false
	err := e.events(context.Background(), func() { connected = true }, func(ev engineEvent) { got = append(got, ev) })
	if err == nil {
		t.Fatal("events returned nil at end of stream")
	}
	if !connected || len(got) != 2 {
		t.Fatalf("connected=%v events=%+v", connected, got)
	}
	if got[0].action() != "start" || got[0].containerID() != testID1 || got[0].Actor.Attributes["name"] != "web" {
		t.Errorf("event 0 = %+v", got[0])
	}
	if got[1].action() != "destroy" || got[1].containerID() != testID2 {
		t.Errorf("event 1 = %+v", got[1])
	}
}

func TestEngineMissingSocket(t *testing.T) {
	e := newEngine(endpoint{network: "unix", address: filepath.Join(t.TempDir(), "nope.sock")})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := e.list(ctx); err == nil {
		t.Fatal("list on a missing socket succeeded")
	}
}
