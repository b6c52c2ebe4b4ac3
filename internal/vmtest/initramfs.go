package vmtest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Guest tools, at these paths in the guest and in the architecture's
// userland root (Arch.UserlandRoot). busybox must be the static build.
const (
	guestBusybox = "/bin/busybox"
	guestRunc    = "/usr/sbin/runc"
	// hostBusybox lists the applets: a foreign busybox cannot run here, and
	// Debian builds busybox-static with one configuration for every
	// architecture.
	hostBusybox = "/bin/busybox"
)

// CommonImage packs everything that is the same for every kernel of an
// architecture: busybox, /init, runc with its libraries, the test binaries
// (built for a) and their testdata. It returns a gzip-compressed newc
// archive. modesFile (the attach-mode expectations, may be "") goes to
// guestModesFile.
func CommonImage(a Arch, bins []TestBinary, sel Selection, testTimeout time.Duration, modesFile string) ([]byte, error) {
	var buf bytes.Buffer
	// BestSpeed: the archive is read once by a local VM; packing time matters more.
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	c := newCPIO(zw)
	if err := addCommon(c, a, bins, sel, testTimeout); err != nil {
		return nil, err
	}
	if modesFile != "" {
		if err := c.copyFile(strings.TrimPrefix(guestModesFile, "/"), modesFile); err != nil {
			return nil, fmt.Errorf("attach-mode expectations: %w", err)
		}
	}
	if err := c.close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addCommon(c *cpioWriter, a Arch, bins []TestBinary, sel Selection, testTimeout time.Duration) error {
	for _, d := range []string{"proc", "sys", "tmp", "root", "etc", "sbin", "usr/bin", "usr/sbin"} {
		if err := c.mkdirAll(d); err != nil {
			return err
		}
	}
	if err := c.charDev("dev/console", 5, 1); err != nil {
		return err
	}
	if err := addBusybox(c, a); err != nil {
		return err
	}
	if err := c.file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\n")); err != nil {
		return err
	}
	if err := addDynamic(c, a, guestRunc); err != nil {
		return fmt.Errorf("runc: %w", err)
	}
	names := make([]string, 0, len(bins))
	for _, b := range bins {
		names = append(names, b.Name)
		if err := c.copyFile("vmtest/bin/"+b.Name+".test", b.Path); err != nil {
			return err
		}
		if err := c.mkdirAll("vmtest/pkg/" + b.Name); err != nil {
			return err
		}
		if err := addTree(c, filepath.Join(b.Dir, "testdata"), "vmtest/pkg/"+b.Name+"/testdata"); err != nil {
			return err
		}
	}
	return c.file("init", 0o755, []byte(initScript(names, sel, testTimeout)))
}

func addBusybox(c *cpioWriter, a Arch) error {
	if err := c.copyFile(strings.TrimPrefix(guestBusybox, "/"), filepath.Join(a.UserlandRoot(), guestBusybox)); err != nil {
		return fmt.Errorf("%w (make deps installs busybox-static)", err)
	}
	out, err := exec.Command(hostBusybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if filepath.Base(p) == "busybox" {
			continue
		}
		if err := c.symlink(p, guestBusybox); err != nil {
			return err
		}
	}
	return nil
}

// addDynamic adds a dynamically linked binary of a's userland, its loader
// and libraries, each at its path in that userland.
func addDynamic(c *cpioWriter, a Arch, bin string) error {
	root := a.UserlandRoot()
	libs, err := sharedLibs(root, bin, a)
	if err != nil {
		return err
	}
	for _, p := range append([]string{bin}, libs...) {
		if err := c.copyFile(strings.TrimPrefix(p, "/"), filepath.Join(root, p)); err != nil {
			return err
		}
	}
	return nil
}

// addTree copies a host directory (if it exists) into the archive.
func addTree(c *cpioWriter, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(filepath.Join(dst, rel))
		switch {
		case d.IsDir():
			return c.mkdirAll(name)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return c.symlink(name, target)
		case d.Type().IsRegular():
			return c.copyFile(name, p)
		}
		return nil // sockets, devices: nothing a test needs
	})
}

// KernelImage packs the per-kernel part: the modules, decompressed, and the
// env file /init sources. It is appended to the common image.
func KernelImage(k Kernel, modDir string, want []string) ([]byte, []string, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, nil, err
	}
	deps, err := ParseModulesDep(f)
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("parsing modules.dep: %w", err)
	}
	order, err := deps.LoadOrder(want)
	if err != nil {
		return nil, nil, fmt.Errorf("kernel %s: %w", k.Name, err)
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, nil, err
	}
	c := newCPIO(zw)
	for _, m := range order {
		data, err := readModule(modDir, deps[m].path)
		if err != nil {
			return nil, nil, fmt.Errorf("kernel %s: %w", k.Name, err)
		}
		if err := c.file("vmtest/modules/"+m+".ko", 0o644, data); err != nil {
			return nil, nil, err
		}
	}
	env := fmt.Sprintf("OBSERVER_VM_KERNEL=%s\nMODULES=%s\n", shellQuote(k.Name), shellQuote(strings.Join(order, " ")))
	if err := c.file(strings.TrimPrefix(kernelEnvFile, "/"), 0o644, []byte(env)); err != nil {
		return nil, nil, err
	}
	if err := c.close(); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), order, nil
}

// BootInitramfs packs a busybox initramfs for booting a disk: the modules
// wanted that the kernel does not have built in (listed in modules.dep, with
// their dependencies, decompressed) under /modules, in load order, and the
// given /init script, which finds them in $MODULES. For kernels whose package
// ships no initrd (Debian 11's 5.10).
func BootInitramfs(modDir string, want []string, initScript string) ([]byte, []string, error) {
	f, err := os.Open(filepath.Join(modDir, "modules.dep"))
	if err != nil {
		return nil, nil, err
	}
	deps, err := ParseModulesDep(f)
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("parsing modules.dep: %w", err)
	}
	var modular []string
	for _, m := range want {
		if _, ok := deps[strings.ReplaceAll(m, "-", "_")]; ok {
			modular = append(modular, m)
		}
	}
	order, err := deps.LoadOrder(modular)
	if err != nil {
		return nil, nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, nil, err
	}
	c := newCPIO(zw)
	for _, d := range []string{"dev", "proc", "sys", "newroot", "modules"} {
		if err := c.mkdirAll(d); err != nil {
			return nil, nil, err
		}
	}
	if err := c.charDev("dev/console", 5, 1); err != nil {
		return nil, nil, err
	}
	if err := addBusybox(c, arches[runtime.GOARCH]); err != nil {
		return nil, nil, err
	}
	for _, m := range order {
		data, err := readModule(modDir, deps[m].path)
		if err != nil {
			return nil, nil, err
		}
		if err := c.file("modules/"+m+".ko", 0o644, data); err != nil {
			return nil, nil, err
		}
	}
	script := "#!/bin/sh\nMODULES=" + shellQuote(strings.Join(order, " ")) + "\n" + initScript
	if err := c.file("init", 0o755, []byte(script)); err != nil {
		return nil, nil, err
	}
	if err := c.close(); err != nil {
		return nil, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), order, nil
}
