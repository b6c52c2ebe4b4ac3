package vmtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// sharedLibs lists the shared objects a dynamic binary needs, including the
// dynamic loader, as absolute host paths (resolved by ldd). runc is the only
// dynamic binary in the guest; copying its libraries at their host paths is
// simpler than building a static runc.
func sharedLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil, nil
		}
		return nil, fmt.Errorf("ldd %s: %w: %s", bin, err, out)
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		// Lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
		// or "/lib64/ld-linux-x86-64.so.2 (0x...)" or "linux-vdso.so.1 (0x...)".
		f := strings.Fields(sc.Text())
		for i, w := range f {
			if w == "=>" && i+1 < len(f) && filepath.IsAbs(f[i+1]) {
				libs = append(libs, f[i+1])
				break
			}
			if i == 0 && filepath.IsAbs(w) {
				libs = append(libs, w)
				break
			}
		}
	}
	return libs, sc.Err()
}
