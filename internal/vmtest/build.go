package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// TestBinary is one compiled test package.
type TestBinary struct {
	Name       string // file-system-safe name, e.g. "internal_vmtest_probe"
	ImportPath string
	Dir        string // package source dir; its testdata/ goes into the guest
	Path       string // compiled binary on the host
}

// BuildTests compiles every package matching patterns that has tests, for
// the architecture a, as static binaries (CGO_ENABLED=0) because the guest
// has no libc for them.
// Patterns that match nothing are skipped, so the default list can name
// packages that do not exist yet.
func BuildTests(ctx context.Context, a Arch, patterns []string, outDir string) ([]TestBinary, error) {
	args := append([]string{"list", "-e", "-f",
		"{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}\t{{.Dir}}\t{{.Module.Path}}{{end}}"}, patterns...)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %v: %w: %s", patterns, err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		slog.Warn("go list", "stderr", s)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("test binary dir: %w", err)
	}
	var bins []TestBinary
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], f[2]), "/")
		name := strings.NewReplacer("/", "_", ".", "_").Replace(rel)
		if name == "" {
			name = "root"
		}
		tb := TestBinary{Name: name, ImportPath: f[0], Dir: f[1], Path: filepath.Join(outDir, name+".test")}
		slog.Info("building test binary", "package", tb.ImportPath, "arch", a.Name)
		build := exec.CommandContext(ctx, "go", "test", "-c", "-o", tb.Path, tb.ImportPath)
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+a.Name)
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go test -c %s: %w\n%s", tb.ImportPath, err, out)
		}
		bins = append(bins, tb)
	}
	if len(bins) == 0 {
		return nil, fmt.Errorf("no test packages match %v", patterns)
	}
	return bins, nil
}
