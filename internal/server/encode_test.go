package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A document that cannot be encoded (a semaphore ctime of year 10000 made
// /residue answer 200 with an empty body) is a 500 with the reason.
func TestUnencodableDocumentIs500(t *testing.T) {
	h := JSONHandler(func() any { return map[string]time.Time{"ctime": time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)} },
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/residue", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "encode response") || !strings.Contains(rec.Body.String(), "year") {
		t.Errorf("status %d, body %q; want 500 saying why", rec.Code, rec.Body.String())
	}
}
