package residue

import "golang.org/x/sys/unix"

// semRemove is semctl(id, 0, IPC_RMID).
func semRemove(id int32) error {
	_, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), 0, unix.IPC_RMID, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
