package container

import (
	"context"
	"os"
)

// EngineClient is the Docker Engine API client for other parts of the daemon
// (e.g. residue detection asks which containers exist). It reuses the
// resolver's minimal client.
type EngineClient struct{ e *engine }

// NewEngineClient connects lazily to dockerHost ("" = $DOCKER_HOST or the
// default socket, as the docker CLI reads it). It fails only on a bad address.
func NewEngineClient(dockerHost string) (*EngineClient, error) {
	if dockerHost == "" {
		dockerHost = os.Getenv("DOCKER_HOST")
	}
	ep, err := parseDockerHost(dockerHost, os.Getenv("DOCKER_TLS_VERIFY"))
	if err != nil {
		return nil, err
	}
	return &EngineClient{e: newEngine(ep)}, nil
}

// Endpoint names the engine's address, for log lines.
func (c *EngineClient) Endpoint() string { return c.e.ep.String() }

// Running lists the containers the engine reports as running.
func (c *EngineClient) Running(ctx context.Context) ([]Container, error) {
	return c.e.list(ctx)
}
