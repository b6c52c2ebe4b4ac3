package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Semget is semget(2).
func Semget(key int32, nsems, flags int) (int32, error) {
	id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(uint32(key)), uintptr(nsems), uintptr(flags))
	if errno != 0 {
		return -1, errno
	}
	return int32(id), nil
}

// SemRemove is semctl(id, 0, IPC_RMID).
func SemRemove(id int32) error {
	if _, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), 0, unix.IPC_RMID, 0, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// envSemLeaker makes a test binary a semaphore leaker (see SemLeakerMain).
const envSemLeaker = "OBSERVER_TEST_SEM_LEAKER"

// SemLeakerMain makes the test binary a semaphore leaker when StartSemLeaker
// runs it; call it first in TestMain. The leaker creates one array per
// "key:remove" item of its spec (key in hex, 0 = IPC_PRIVATE), removes those
// marked 1, prints "kept|removed ID KEY" lines and "ready", then waits to be
// killed, as devicemapper's cookies are left when dockerd is force-killed
// mid-operation.
func SemLeakerMain() {
	spec := os.Getenv(envSemLeaker)
	if spec == "" {
		return
	}
	for _, item := range strings.Split(spec, ",") {
		k, rm, _ := strings.Cut(item, ":")
		key, err := strconv.ParseUint(k, 16, 32)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		id, err := Semget(int32(key), 1, unix.IPC_CREAT|unix.IPC_EXCL|0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "semget:", err)
			os.Exit(1)
		}
		if rm == "1" {
			if err := SemRemove(id); err != nil {
				fmt.Fprintln(os.Stderr, "semctl:", err)
				os.Exit(1)
			}
			fmt.Printf("removed %d %x\n", id, key)
			continue
		}
		fmt.Printf("kept %d %x\n", id, key)
	}
	fmt.Println("ready")
	select {} // until SIGKILL
}

// StartSemLeaker runs the test binary as a leaker of spec (see SemLeakerMain)
// and returns once its arrays exist: the process, the arrays it kept (semid
// -> key) and those it removed. When the test ends the leaker is killed and
// the kept arrays still there are removed.
func StartSemLeaker(t testing.TB, spec string) (cmd *exec.Cmd, kept map[int32]uint32, removed []int32) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envSemLeaker+"="+spec)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kept = map[int32]uint32{}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		for id := range kept {
			SemRemove(id) // most are removed by the test already; this is the safety net
		}
	})
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "ready" {
		var what string
		var id int32
		var key uint32
		if _, err := fmt.Sscanf(sc.Text(), "%s %d %x", &what, &id, &key); err != nil {
			t.Fatalf("semaphore leaker said %q: %v", sc.Text(), err)
		}
		if what == "kept" {
			kept[id] = key
		} else {
			removed = append(removed, id)
		}
	}
	return cmd, kept, removed
}
