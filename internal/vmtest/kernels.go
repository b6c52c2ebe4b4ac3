package vmtest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Kernel is one row of the matrix file.
type Kernel struct {
	Name    string // short name, e.g. "6.1"; also OBSERVER_VM_KERNEL in the guest
	Package string // Debian package that installs it
	Glob    string // glob for the vmlinuz, e.g. /boot/vmlinuz-6.1.*-amd64
	Arch    Arch   // the guest's architecture (fourth field, default amd64)
}

// ParseKernels reads "name<TAB>package<TAB>glob[<TAB>arch]" lines; blank lines
// and lines starting with # are ignored. Any run of whitespace separates fields so an
// editor that turns tabs into spaces does not break the file.
func ParseKernels(r io.Reader) ([]Kernel, error) {
	var ks []Kernel
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 && len(f) != 4 {
			return nil, fmt.Errorf("line %d: want 3 or 4 fields (name, package, vmlinuz glob, [architecture]), got %d", n, len(f))
		}
		arch := DefaultArch
		if len(f) == 4 {
			arch = f[3]
		}
		a, err := LookupArch(arch)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("line %d: duplicate kernel name %q", n, f[0])
		}
		seen[f[0]] = true
		ks = append(ks, Kernel{Name: f[0], Package: f[1], Glob: f[2], Arch: a})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return ks, nil
}

// LoadKernels reads the matrix file.
func LoadKernels(path string) ([]Kernel, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kernel matrix: %w", err)
	}
	defer f.Close()
	ks, err := ParseKernels(f)
	if err != nil {
		return nil, fmt.Errorf("kernel matrix %s: %w", path, err)
	}
	return ks, nil
}

// Filter keeps the kernels whose names are listed; an empty list keeps all.
func Filter(ks []Kernel, names []string) ([]Kernel, error) {
	if len(names) == 0 {
		return ks, nil
	}
	byName := map[string]Kernel{}
	for _, k := range ks {
		byName[k.Name] = k
	}
	var out []Kernel
	for _, n := range names {
		k, ok := byName[n]
		if !ok {
			return nil, fmt.Errorf("kernel %q is not in the matrix", n)
		}
		out = append(out, k)
	}
	return out, nil
}

// OfArch keeps the kernels of one architecture (the systemtest node is the
// host's).
func OfArch(ks []Kernel, arch string) []Kernel {
	var out []Kernel
	for _, k := range ks {
		if k.Arch.Name == arch {
			out = append(out, k)
		}
	}
	return out
}

// Root is the tree the kernel lives in: "/" for a kernel installed with apt
// (the glob is under /boot/), else the directory its package is unpacked into
// (internal/vmtest/apt/extract-kernel.sh), e.g. /var/cache/observer/kernels/5.10
// for the glob /var/cache/observer/kernels/5.10/boot/vmlinuz-5.10.*-amd64.
func (k Kernel) Root() (string, error) {
	if strings.HasPrefix(k.Glob, "/boot/") {
		return "/", nil
	}
	root, _, ok := strings.Cut(k.Glob, "/boot/")
	if !ok || !filepath.IsAbs(root) || strings.ContainsAny(root, "*?[") {
		return "", fmt.Errorf("kernel %s: glob %q: want /boot/vmlinuz-... or ROOT/boot/vmlinuz-... with an absolute ROOT without wildcards", k.Name, k.Glob)
	}
	return root, nil
}

// Extracted tells whether the kernel is unpacked (not installed) by make deps.
func (k Kernel) Extracted() bool { r, err := k.Root(); return err == nil && r != "/" }

// Resolve finds the vmlinuz (newest match by name when several are installed)
// and the matching lib/modules directory of its root.
func (k Kernel) Resolve() (vmlinuz, modDir string, err error) {
	root, err := k.Root()
	if err != nil {
		return "", "", err
	}
	matches, err := filepath.Glob(k.Glob)
	if err != nil {
		return "", "", fmt.Errorf("kernel %s: bad glob %q: %w", k.Name, k.Glob, err)
	}
	if len(matches) == 0 {
		return "", "", fmt.Errorf("kernel %s: nothing matches %s (run `make deps` to install or unpack %s)", k.Name, k.Glob, k.Package)
	}
	sort.Strings(matches)
	vmlinuz = matches[len(matches)-1]
	release := strings.TrimPrefix(filepath.Base(vmlinuz), "vmlinuz-")
	modDir = filepath.Join(root, "lib/modules", release)
	if _, err := os.Stat(filepath.Join(modDir, "modules.dep")); err != nil {
		return "", "", fmt.Errorf("kernel %s: modules for %s: %w", k.Name, release, err)
	}
	return vmlinuz, modDir, nil
}
