package vmtest

import (
	"debug/elf"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// sharedLibs lists what a dynamic binary needs to run: its dynamic loader
// (PT_INTERP) and every shared object of its DT_NEEDED closure, as paths
// inside root (absolute, as the guest sees them). It reads the ELF files
// rather than running ldd, which cannot run another architecture's loader:
// runc is the only dynamic binary in the guest, and copying its libraries is
// simpler than building a static runc. A static binary needs nothing.
func sharedLibs(root, bin string, a Arch) ([]string, error) {
	var libs []string
	seen := map[string]bool{}
	queue := []string{bin}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		interp, needed, err := dynamicDeps(filepath.Join(root, p), a)
		if err != nil {
			return nil, err
		}
		if interp != "" && !seen[interp] {
			seen[interp] = true
			libs = append(libs, interp)
		}
		for _, name := range needed {
			lib, err := findLib(root, name, a)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			if !seen[lib] {
				seen[lib] = true
				libs = append(libs, lib)
				queue = append(queue, lib)
			}
		}
	}
	return libs, nil
}

// dynamicDeps reads a file's loader and DT_NEEDED names, checking that it is
// built for a.
func dynamicDeps(file string, a Arch) (interp string, needed []string, err error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", nil, fmt.Errorf("reading %s: %w", file, err)
	}
	defer f.Close()
	if f.Machine != a.ELF {
		return "", nil, fmt.Errorf("%s is %s, not %s (%s)", file, f.Machine, a.ELF, a.Name)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", nil, fmt.Errorf("%s: reading PT_INTERP: %w", file, err)
			}
			interp = string(b[:len(b)-1]) // NUL-terminated
		}
	}
	needed, err = f.ImportedLibraries()
	if err != nil {
		return "", nil, fmt.Errorf("%s: DT_NEEDED: %w", file, err)
	}
	return interp, needed, nil
}

// findLib looks a DT_NEEDED name up in the loader's directories of root.
func findLib(root, name string, a Arch) (string, error) {
	for _, d := range a.LibDirs {
		p := path.Join("/", d, name)
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("library %s not found under %s in %v", name, root, a.LibDirs)
}
