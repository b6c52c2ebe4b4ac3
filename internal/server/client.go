package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// maxJSONResponse bounds what a subcommand reads from the daemon.
const maxJSONResponse = 64 << 20

// ErrAnswered is wrapped by GetJSON's error when a daemon answered, with an
// error status: it runs, so falling back to something else would hide its error.
var ErrAnswered = errors.New("the daemon answered with an error")

// GetJSON asks the daemon listening on addr (host:port) for one of its JSON
// documents (e.g. /residue, /latency) and decodes it into v. It is what the
// subcommands that talk to a running daemon share.
func GetJSON(ctx context.Context, addr, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := "http://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("is the daemon running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%w: GET %s: %s: %s", ErrAnswered, url, resp.Status, strings.TrimSpace(string(msg)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSONResponse)).Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}
