// Package vmtest runs the project's kernel-facing Go tests inside QEMU, once
// per kernel listed in testdata/vmtest/kernels.txt (`make vmtest`), on that
// kernel's architecture (amd64, or arm64 emulated on an amd64 host).
//
// For each architecture it compiles the test packages as static binaries,
// packs one gzip'd newc initramfs with busybox, runc (plus the loader and
// libraries its ELF headers name; a foreign architecture's from the Debian
// packages make deps unpacked, see arch.go), the test binaries and a
// generated /init, and appends a small per-kernel
// archive with that kernel's modules (resolved from its modules.dep,
// decompressed on the host) and /vmtest/kernel.env. The guest's console is
// streamed to .vmtest/<kernel>/console.log and parsed for markers.
//
// Guest contract, for the tests that run here:
//   - OBSERVER_VM_KERNEL=<matrix name> is set (testenv.VMKernel); unset on the host.
//   - OBSERVER_MODES_FILE=/vmtest/modes.txt, a copy of testdata/vmtest/modes.txt:
//     the attach modes each kernel must offer (testenv.ExpectedModes).
//   - Root, with proc, sysfs, devtmpfs (plus the /dev/fd and /dev/std*
//     links udev would make), devpts, tmpfs /tmp, tracefs at
//     /sys/kernel/tracing, debugfs, securityfs, bpffs at /sys/fs/bpf and
//     cgroup2 at /sys/fs/cgroup mounted; overlay, veth, bridge (+stp, llc) loaded; lo up;
//     /bin/busybox and runc on PATH, so testenv.NewContainer works.
//   - The working directory is a copy of the package's testdata/ parent, so
//     os.ReadFile("testdata/...") works as under go test.
//   - A line "OBSERVER-RESULT <json object>" on stdout (testenv.Result) is
//     collected into .vmtest/<kernel>/results.jsonl with "kernel" and
//     "binary" added; a line that is not a JSON object fails the run.
//   - Markers (one per line): "OBSERVER-VMTEST BOOTED kernel=<name>
//     release=<uname -r>", "OBSERVER-VMTEST INSMOD-FAILED <module>",
//     "OBSERVER-VMTEST BEGIN <binary>", "OBSERVER-VMTEST END <binary>
//     exit=<status>", "OBSERVER-VMTEST DONE". A kernel panic, a BUG/Oops line,
//     a missing END or DONE marker, or the per-kernel timeout fails the kernel.
//
// Why not github.com/hugelgupf/vmtest (evaluated, time-boxed): its guest side
// (u-root init + vmmount + gouinit) reads the test binaries from, and writes
// results to, a 9p share that it mounts first thing. On Debian's stock 6.1
// kernel 9p, 9pnet, 9pnet_virtio, virtio, virtio_ring, virtio_pci, netfs and
// fscache are all modules, and 6.12 ships them xz-compressed; its initramfs
// has no step to load modules before that mount, so the guest booted and shut
// down with no results (errors.json/results.json never written). Making it fit
// means replacing its guest init, which is most of what it provides. It also
// needs u-root, mkuimage and gobusybox in our go.mod and did not build with
// Go 1.26 until golang.org/x/tools was upgraded past what it pins. A serial
// console plus a busybox shell /init needs no guest drivers at all.
package vmtest
