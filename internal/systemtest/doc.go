// Package systemtest runs the whole product on a real node: a QEMU guest
// booted from a Debian disk image with systemd, journald, udev, dockerd and
// Prometheus, the observer running as its own systemd unit
// (deploy/systemd/observer.service), once per kernel of the matrix.
//
// The host side (Build, Boot, the table) builds or reuses the disk, boots it
// and reads the results back from the serial console. The guest side
// (package scenario, run by cmd/systemtest-guest as a oneshot unit) waits for
// the node to come up, reproduces each failure the observer exists for in
// real Docker containers and checks what an operator would see: PromQL
// through Prometheus's HTTP API, /events and the CLI.
//
// Console contract (shared with internal/vmtest's parser): the guest prints
// "OBSERVER-VMTEST BOOTED kernel=<name> release=<uname -r>", one
// "OBSERVER-RESULT <json Result>" per scenario, "OBSERVER-SYSTEMTEST <text>"
// progress lines and "OBSERVER-VMTEST DONE" before it powers off.
package systemtest
