package vmtest

import (
	"debug/elf"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Arch is what differs between the guest architectures of the matrix: how
// QEMU boots them, where their userland comes from and how their test
// binaries are built.
type Arch struct {
	Name    string      // GOARCH, and the matrix file's fourth column
	ELF     elf.Machine // what its binaries say they are
	QEMU    string      // the system emulator
	Board   []string    // arguments that choose the emulated machine
	Console string      // the kernel's console= device
	LibDirs []string    // where its dynamic loader looks, relative to the userland root
}

// UserlandDir is where make deps unpacks a foreign architecture's guest
// userland (busybox-static, runc and its libraries) from Debian's packages,
// one directory per architecture: internal/vmtest/apt/extract-packages.sh,
// USERLAND_DIR in the Makefile. The host's own architecture uses the host's.
const UserlandDir = "/var/cache/observer/userland"

// DefaultArch is the architecture of a matrix line without a fourth column.
const DefaultArch = "amd64"

var arches = map[string]Arch{
	"amd64": {
		Name: "amd64", ELF: elf.EM_X86_64,
		QEMU: "qemu-system-x86_64", Console: "ttyS0",
		LibDirs: []string{"lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib"},
	},
	"arm64": {
		Name: "arm64", ELF: elf.EM_AARCH64,
		// virt is QEMU's generic board: a PL011 UART (ttyAMA0), and a kernel
		// image boots with -kernel without firmware.
		QEMU: "qemu-system-aarch64", Board: []string{"-M", "virt"}, Console: "ttyAMA0",
		LibDirs: []string{"lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib"},
	},
}

// LookupArch returns the named architecture.
func LookupArch(name string) (Arch, error) {
	a, ok := arches[name]
	if !ok {
		known := make([]string, 0, len(arches))
		for n := range arches {
			known = append(known, n)
		}
		slices.Sort(known)
		return Arch{}, fmt.Errorf("unknown architecture %q (known: %s)", name, strings.Join(known, ", "))
	}
	return a, nil
}

// Native tells whether the host runs this architecture's binaries itself.
func (a Arch) Native() bool { return a.Name == runtime.GOARCH }

// UserlandRoot is the tree the guest's busybox, runc and libraries are taken
// from: the host for its own architecture, else what make deps unpacked.
func (a Arch) UserlandRoot() string {
	if a.Native() {
		return "/"
	}
	return filepath.Join(UserlandDir, a.Name)
}
