package testenv

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// busyboxPaths are where Debian's busybox-static (and the VM initramfs) put the
// binary; the first static one found is used.
var busyboxPaths = []string{"/bin/busybox", "/usr/bin/busybox"}

// findBusybox returns a statically linked busybox: a dynamic one would not run
// in a rootfs that has no libc.
func findBusybox() (string, error) {
	for _, p := range busyboxPaths {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		static, err := isStatic(p)
		if err != nil {
			return "", err
		}
		if static {
			return p, nil
		}
	}
	return "", fmt.Errorf("no static busybox in %v (apt-get install busybox-static)", busyboxPaths)
}

// isStatic reports whether the ELF file has no program interpreter.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, fmt.Errorf("reading %s as ELF: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// BuildBusyboxRootfs fills dir with a minimal root filesystem: /bin/busybox,
// one symlink per applet, and the directories runc mounts over.
func BuildBusyboxRootfs(dir string) error {
	bb, err := findBusybox()
	if err != nil {
		return err
	}
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("creating rootfs dir: %w", err)
		}
	}
	if err := copyFile(bb, filepath.Join(dir, "bin", "busybox"), 0o755); err != nil {
		return err
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		return fmt.Errorf("%s --list: %w", bb, err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			return fmt.Errorf("linking applet %s: %w", applet, err)
		}
	}
	// A passwd/group file keeps tools like id and ls from printing bare numbers.
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
	}
	return nil
}

// writeTree creates files below root from a map of relative path to content;
// a path ending in "/" is a directory. Paths may not escape root.
func writeTree(root string, files map[string]string) error {
	for name, content := range files {
		clean := filepath.Clean("/" + name)
		p := filepath.Join(root, clean)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return fmt.Errorf("staging dir %s: %w", name, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("staging %s: %w", name, err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("staging %s: %w", name, err)
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return out.Close()
}

// trimOutput keeps error messages readable when a command prints a lot.
func trimOutput(b []byte) string {
	b = bytes.TrimSpace(b)
	const max = 4096
	if len(b) > max {
		return "..." + string(b[len(b)-max:])
	}
	return string(b)
}
