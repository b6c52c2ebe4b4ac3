package vmtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSharedLibs resolves runc's loader and libraries from its ELF headers,
// as packed into the guest, in the host's userland and, when make deps has
// unpacked it, arm64's.
func TestSharedLibs(t *testing.T) {
	for _, name := range []string{"amd64", "arm64"} {
		t.Run(name, func(t *testing.T) {
			a, err := LookupArch(name)
			if err != nil {
				t.Fatal(err)
			}
			root := a.UserlandRoot()
			if _, err := os.Stat(filepath.Join(root, guestRunc)); err != nil {
				t.Skipf("no %s runc in %s (make deps): %v", name, root, err)
			}
			libs, err := sharedLibs(root, guestRunc, a)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(libs, func(p string) bool { return filepath.Base(p) == "libc.so.6" }) ||
				!slices.ContainsFunc(libs, func(p string) bool { return strings.HasPrefix(filepath.Base(p), "ld-linux") }) {
				t.Errorf("libraries of runc = %v, want libc.so.6 and the loader", libs)
			}
			for _, p := range libs {
				if !filepath.IsAbs(p) {
					t.Errorf("%s: want a path as the guest sees it", p)
				}
			}
		})
	}
}

func TestSharedLibsWrongArch(t *testing.T) {
	if _, err := os.Stat(guestRunc); err != nil {
		t.Skipf("no runc on the host: %v", err)
	}
	other := "arm64"
	if arches["arm64"].Native() {
		other = "amd64"
	}
	if _, err := sharedLibs("/", guestRunc, arches[other]); err == nil || !strings.Contains(err.Error(), "not") {
		t.Errorf("host runc read as %s: err = %v, want a wrong-architecture error", other, err)
	}
}
