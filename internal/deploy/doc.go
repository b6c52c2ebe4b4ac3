// Package deploy holds the tests of the deployment files under deploy/ (the
// image, Kubernetes manifests, Prometheus rules and the Grafana dashboard):
// each is checked against the real thing it configures where this machine has
// it (dockerd, Prometheus), and parsed for the fields the observer needs
// where it does not (a Kubernetes cluster).
package deploy

import (
	"os"
	"path/filepath"
	"runtime"
)

// repoRoot is the module root, found from this file's path.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func readRepoFile(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(repoRoot(), rel)) }
