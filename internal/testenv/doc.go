// Package testenv holds helpers shared by tests that run against the real
// kernel, both on the host (as root) and inside the QEMU test tier
// (internal/vmtest): privilege checks, a real runc container on an overlay
// root, and the results channel that the VM harness collects.
package testenv
