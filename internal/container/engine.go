package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	requestTimeout = 5 * time.Second
	maxListBody    = 16 << 20 // thousands of containers fit well below this
	maxInspectBody = 4 << 20
)

// errNoSuchContainer is the engine's 404: the id belongs to another runtime
// (containerd, CRI-O, podman) or the container is already gone.
var errNoSuchContainer = errors.New("no such container")

// engine is a minimal Docker Engine API client: list, inspect, events.
// Paths carry no version prefix so any engine answers with its own version.
type engine struct {
	ep     endpoint
	client *http.Client
	base   string // URL prefix for requests
}

func newEngine(ep endpoint) *engine {
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, ep.network, ep.address)
		},
		ResponseHeaderTimeout: requestTimeout,
		MaxIdleConns:          2,
		IdleConnTimeout:       30 * time.Second,
		DisableCompression:    true,
	}
	// The host part is ignored by the dialer; for unix sockets the CLI sends "docker".
	host := "docker"
	if ep.network == "tcp" {
		host = ep.address
	}
	return &engine{ep: ep, client: &http.Client{Transport: tr}, base: "http://" + host + ep.base}
}

// get issues a GET and returns the response when the status is 200.
func (e *engine) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, errNoSuchContainer
	}
	return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(msg)))
}

func (e *engine) getJSON(ctx context.Context, path string, limit int64, v any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := e.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", path, err)
	}
	return nil
}

// list returns the running containers.
func (e *engine) list(ctx context.Context) ([]Container, error) {
	var raw []struct {
		ID     string            `json:"Id"`
		Names  []string          `json:"Names"`
		Image  string            `json:"Image"`
		Labels map[string]string `json:"Labels"`
	}
	if err := e.getJSON(ctx, "/containers/json", maxListBody, &raw); err != nil {
		return nil, err
	}
	out := make([]Container, 0, len(raw))
	for _, c := range raw {
		if !isID(c.ID) {
			continue
		}
		var name string
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, Container{ID: c.ID, Name: name, Image: c.Image, Pod: podFromLabels(c.Labels)})
	}
	return out, nil
}

// inspect returns one container's name and image.
func (e *engine) inspect(ctx context.Context, id string) (Container, error) {
	if !isID(id) {
		return Container{}, fmt.Errorf("inspect %q: not a container id", id)
	}
	var raw struct {
		Name   string `json:"Name"`
		Config struct {
			Image  string            `json:"Image"`
			Labels map[string]string `json:"Labels"`
		} `json:"Config"`
	}
	if err := e.getJSON(ctx, "/containers/"+id+"/json", maxInspectBody, &raw); err != nil {
		return Container{}, err
	}
	return Container{ID: id, Name: strings.TrimPrefix(raw.Name, "/"), Image: raw.Config.Image, Pod: podFromLabels(raw.Config.Labels)}, nil
}

// engineEvent is one container event. Engines before API 1.22 only send
// status/id; later ones add Action and Actor with name and image attributes.
type engineEvent struct {
	Status string `json:"status"`
	ID     string `json:"id"`
	Type   string `json:"Type"`
	Action string `json:"Action"`
	Actor  struct {
		ID         string            `json:"ID"`
		Attributes map[string]string `json:"Attributes"`
	} `json:"Actor"`
}

func (ev engineEvent) action() string {
	if ev.Action != "" {
		return ev.Action
	}
	return ev.Status
}

func (ev engineEvent) containerID() string {
	if ev.Actor.ID != "" {
		return ev.Actor.ID
	}
	return ev.ID
}

// eventsFilter limits the stream to container events.
var eventsFilter = url.QueryEscape(`{"type":["container"]}`)

// events streams container events to fn until ctx ends or the stream breaks.
// connected is called once the engine has answered, before any event.
func (e *engine) events(ctx context.Context, connected func(), fn func(engineEvent)) error {
	resp, err := e.get(ctx, "/events?filters="+eventsFilter)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	connected()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev engineEvent
		if err := dec.Decode(&ev); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("events stream: %w", err)
		}
		if ev.Type == "" || ev.Type == "container" {
			fn(ev)
		}
	}
}
