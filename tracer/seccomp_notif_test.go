package tracer

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SECCOMP_RET_USER_NOTIF and its ioctls (include/uapi/linux/seccomp.h).
const (
	seccompRetUserNotif       = 0x7fc00000
	seccompFlagNewListener    = 1 << 3
	seccompNotifFlagContinue  = 1
	seccompIoctlNotifRecv     = 0xc0502100 // _IOWR('!', 0, struct seccomp_notif)
	seccompIoctlNotifSend     = 0xc0182101 // _IOWR('!', 1, struct seccomp_notif_resp)
	notifWait                 = 2 * time.Millisecond
	notifLongBucket           = 20 // 2^20 ns ≈ 1 ms: a filter run never takes that long
	notifCalls                = 20
	seccompDataNrOffset       = 0
	seccompNotifStructSize    = 80
	seccompNotifRespStructLen = 24
)

type seccompNotif struct {
	ID    uint64
	PID   uint32
	Flags uint32
	Data  [64]byte
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// TestSeccompUserNotifWaitNotFilterCost: a thread whose getppid goes to a
// user-space supervisor that answers after 2 ms sleeps inside
// __seccomp_filter. That wait is not filter cost: the sensor must count each
// such run as slept, never put it in the histogram, and match every exit.
// QEMU only (fentry and kprobes), like TestSeccompFilterTime.
func TestSeccompUserNotifWaitNotFilterCost(t *testing.T) {
	requireRoot(t)
	if unsafe.Sizeof(seccompNotif{}) != seccompNotifStructSize || unsafe.Sizeof(seccompNotifResp{}) != seccompNotifRespStructLen {
		t.Fatal("seccomp notification structs do not match the kernel's layout")
	}
	for _, mode := range []Mode{ModeFentry, ModeKprobe} {
		t.Run(string(mode), func(t *testing.T) {
			tr := startSensor(t, SensorSeccomp, mode, Options{})
			if tr == nil {
				return
			}
			if err := notifiedGetppids(notifCalls); err != nil {
				t.Fatal(err)
			}
			snap, err := tr.SeccompFilterTime()
			if err != nil {
				t.Fatal(err)
			}
			var long, runs uint64
			for _, f := range snap.Filter {
				runs += f.Hist.Count()
				long += bucketSum(f.Hist, notifLongBucket, len(f.Hist.Buckets)-1)
			}
			t.Logf("%s: %d filter runs recorded, %d of them >= 1 ms; slept %d, unmatched %d, storage %d",
				mode, runs, long, snap.Slept, snap.Unmatched, snap.StorageOverflow)
			if snap.Slept < notifCalls {
				t.Errorf("slept = %d, want >= %d (one per notified getppid)", snap.Slept, notifCalls)
			}
			if snap.Unmatched != 0 || snap.StorageOverflow != 0 {
				t.Errorf("unmatched %d, storage %d: want 0", snap.Unmatched, snap.StorageOverflow)
			}
			// The old per-CPU slot recorded each 2 ms wait as filter time.
			if long >= notifCalls {
				t.Errorf("%d filter runs of 1 ms or more recorded: the notifier waits were taken as filter cost", long)
			}
		})
	}
}

// notifiedGetppids installs a SECCOMP_RET_USER_NOTIF filter for getppid on a
// locked thread that then dies with it (the goroutine exits locked), and
// answers each notification from another thread after notifWait.
func notifiedGetppids(n int) error {
	errc := make(chan error, 1)
	fdc := make(chan int, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the filtered thread exits with the goroutine
		prog := []unix.SockFilter{
			{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: seccompDataNrOffset},
			{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.SYS_GETPPID, Jt: 0, Jf: 1},
			{Code: unix.BPF_RET | unix.BPF_K, K: seccompRetUserNotif},
			{Code: unix.BPF_RET | unix.BPF_K, K: seccompRetAllw},
		}
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, seccompFlagNewListener, uintptr(unsafe.Pointer(&fprog)))
		if errno != 0 {
			fdc <- -1
			errc <- fmt.Errorf("seccomp new listener: %w", errno)
			return
		}
		fdc <- int(fd)
		for i := 0; i < n; i++ {
			unix.Syscall(unix.SYS_GETPPID, 0, 0, 0) // not Raw: the P is released while it waits
		}
		errc <- nil
	}()
	fd := <-fdc
	if fd < 0 {
		return <-errc
	}
	defer unix.Close(fd)
	for i := 0; i < n; i++ {
		var req seccompNotif
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), seccompIoctlNotifRecv, uintptr(unsafe.Pointer(&req))); errno != 0 {
			return fmt.Errorf("notification %d: receive: %w", i, errno)
		}
		// Answer only once the thread sleeps in the wait: answered first
		// (its vCPU preempted on a loaded host), it would not sleep at all
		// and the wait would be, rightly, filter-path time.
		if err := waitSleeping(int(req.PID)); err != nil {
			return fmt.Errorf("notification %d: %w", i, err)
		}
		time.Sleep(notifWait)
		resp := seccompNotifResp{ID: req.ID, Flags: seccompNotifFlagContinue}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), seccompIoctlNotifSend, uintptr(unsafe.Pointer(&resp))); errno != 0 {
			return fmt.Errorf("notification %d: send: %w", i, errno)
		}
	}
	return <-errc
}

// waitSleeping waits until thread tid is in an interruptible sleep (state S
// in /proc/<tid>/stat), for at most 5 s.
func waitSleeping(tid int) error {
	path := fmt.Sprintf("/proc/%d/stat", tid)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Microsecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// The state follows the comm's closing parenthesis.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'S' {
			return nil
		}
	}
	return fmt.Errorf("thread %d not asleep in its seccomp wait within 5s", tid)
}
