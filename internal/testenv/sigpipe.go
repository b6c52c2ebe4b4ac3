package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// SIGPIPEDaemon runs a shell script named "dockerd" (so its comm is dockerd)
// that writes into a pipe whose reader is already closed, as dockerd does into
// a journald stream that went away: the kernel kills it with SIGPIPE. It
// returns the pid once the process is dead, and fails the test otherwise.
func SIGPIPEDaemon(t testing.TB) uint32 {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dockerd")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho into-a-closed-pipe\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	cmd := exec.Command(bin)
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	if ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGPIPE {
		t.Fatalf("helper did not die of SIGPIPE: %v", err)
	}
	return uint32(cmd.Process.Pid)
}
