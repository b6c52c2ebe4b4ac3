// Package buildinfo says which observer this is: the version and revision that
// `make build` stamps in with -ldflags -X, or what the Go toolchain recorded for
// a plain `go build`.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by the linker: -X github.com/observer-dev/observer/internal/buildinfo.version=...
var (
	version  string
	revision string
)

// Info is the build's identity, as exported in observer_build_info.
type Info struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	GoVersion string `json:"goversion"`
}

// Get returns the stamped identity, filling what the linker did not set from
// the module's build information (a `go build` in a checkout records the VCS
// revision; `go test` records none).
func Get() Info {
	info := Info{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && info.Revision == "" {
				info.Revision = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	if info.Revision == "" {
		info.Revision = "unknown"
	}
	return info
}

// String is the one line `observer --version` prints.
func (i Info) String() string {
	return fmt.Sprintf("observer %s (revision %s, %s, %s/%s)", i.Version, i.Revision, i.GoVersion, runtime.GOOS, runtime.GOARCH)
}

// Short is the version with the revision's first 12 characters, for /status
// and capture headers.
func (i Info) Short() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "unknown" {
		return i.Version
	}
	return i.Version + "+" + rev
}
