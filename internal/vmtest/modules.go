package vmtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultModules are what the tests need on Debian's stock kernels, where
// these are modules rather than built in.
var DefaultModules = []string{"overlay", "veth", "bridge"}

// ModuleDeps maps a module name (e.g. "bridge") to its path relative to the
// modules directory and the names of the modules it depends on.
type ModuleDeps map[string]moduleEntry

type moduleEntry struct {
	path string
	deps []string
}

// moduleName turns "kernel/net/802/stp.ko.xz" into "stp".
func moduleName(p string) string {
	base := filepath.Base(p)
	if i := strings.Index(base, ".ko"); i >= 0 {
		base = base[:i]
	}
	// modprobe treats - and _ alike; module names use _.
	return strings.ReplaceAll(base, "-", "_")
}

// ParseModulesDep reads modules.dep ("path: dep dep ...").
func ParseModulesDep(r io.Reader) (ModuleDeps, error) {
	md := ModuleDeps{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		e := moduleEntry{path: strings.TrimSpace(mod)}
		for _, d := range strings.Fields(deps) {
			e.deps = append(e.deps, moduleName(d))
		}
		md[moduleName(e.path)] = e
	}
	return md, sc.Err()
}

// LoadOrder returns the modules to insmod, dependencies first, each once.
// Resolving from modules.dep (not a hard-coded list) keeps it right when a
// kernel adds a dependency, as bridge did with stp and llc.
func (md ModuleDeps) LoadOrder(want []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		name = strings.ReplaceAll(name, "-", "_")
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " -> "))
		}
		e, ok := md[name]
		if !ok {
			return fmt.Errorf("module %q not in modules.dep (built in? then drop it from -modules)", name)
		}
		state[name] = 1
		for _, d := range e.deps {
			if err := visit(d, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, name)
		return nil
	}
	for _, w := range want {
		if err := visit(w, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readModule returns the module's ELF bytes, decompressed: busybox insmod
// passes the file to init_module as is, and Debian's 6.12 ships .ko.xz.
func readModule(modDir, rel string) ([]byte, error) {
	p := filepath.Join(modDir, rel)
	switch {
	case strings.HasSuffix(p, ".ko"):
		return os.ReadFile(p)
	case strings.HasSuffix(p, ".ko.gz"):
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(p, ".ko.xz"), strings.HasSuffix(p, ".ko.zst"):
		// The standard library has neither; xz-utils and zstd are tiny packages.
		tool := "xz"
		if strings.HasSuffix(p, ".zst") {
			tool = "zstd"
		}
		var stderr bytes.Buffer
		cmd := exec.Command(tool, "-dc", p)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("decompressing %s with %s: %w: %s", p, tool, err, stderr.String())
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown module format: %s", p)
}
