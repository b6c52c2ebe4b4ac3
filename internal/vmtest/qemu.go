package vmtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// QEMU is how a guest is booted. KVM cannot run Debian's stock kernels on
// these machines (they hang), so the default is multi-threaded TCG.
type QEMU struct {
	Binary  string   // qemu-system-x86_64
	Board   []string // the emulated machine, e.g. -M virt (none on x86)
	Accel   []string // e.g. -accel tcg,thread=multi -cpu max
	Memory  string   // -m
	CPUs    int      // -smp
	Console string   // the guest kernel's console device
}

// DefaultQEMU matches what was measured to boot Debian 6.1 and 6.12 here.
func DefaultQEMU() QEMU {
	return QEMU{
		Binary:  "qemu-system-x86_64",
		Console: "ttyS0",
		Accel:   []string{"-accel", "tcg,thread=multi", "-cpu", "max"},
		Memory:  "1024",
		// One vCPU: with two, a 6.12 guest oopsed on an int3 left in kernel text
		// while a tracepoint's static key was being patched (multi-threaded TCG
		// does not always see cross-modifying code from the other vCPU).
		CPUs: 1,
	}
}

// For is q for a guest of architecture a: its emulator, board and console.
func (q QEMU) For(a Arch) QEMU {
	q.Binary, q.Board, q.Console = a.QEMU, a.Board, a.Console
	return q
}

// Boot runs the guest until it powers off or ctx ends, sending every console
// line to the log and to onLine. A timeout is reported as an error that wraps
// context.DeadlineExceeded.
func (q QEMU) Boot(ctx context.Context, vmlinuz, initrd string, log io.Writer, onLine func(string)) error {
	return q.Run(ctx, Guest{Kernel: vmlinuz, Initrd: initrd, Append: "console=" + q.Console + " quiet panic=-1"}, log, onLine)
}

// Guest is what one boot runs: a kernel, its initrd, its command line and
// any further QEMU arguments (disks).
type Guest struct {
	Kernel, Initrd, Append string
	Extra                  []string
}

// Run boots g like Boot.
func (q QEMU) Run(ctx context.Context, g Guest, log io.Writer, onLine func(string)) error {
	args := append(append([]string{}, q.Board...), q.Accel...)
	args = append(args,
		"-m", q.Memory, "-smp", fmt.Sprint(q.CPUs),
		"-kernel", g.Kernel, "-initrd", g.Initrd,
		"-append", g.Append,
		"-nographic", "-no-reboot",
	)
	args = append(args, g.Extra...)
	cmd := exec.CommandContext(ctx, q.Binary, args...)
	cmd.Stdin = nil // -nographic would otherwise read the monitor from our terminal
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("starting %s: %w", q.Binary, err)
	}
	pw.Close() // the child holds its own copy; EOF comes when qemu exits
	fmt.Fprintf(log, "# %s %q\n", q.Binary, args)

	scanDone := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			onLine(sc.Text())
		}
		scanDone <- sc.Err()
	}()
	waitErr := cmd.Wait()
	scanErr := <-scanDone
	pr.Close()
	if scanErr != nil {
		return fmt.Errorf("reading console: %w", scanErr)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("guest killed: %w", ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(waitErr, &exit) {
		return fmt.Errorf("%s exited with %d", q.Binary, exit.ExitCode())
	}
	return waitErr
}
