package vmtest

import (
	"fmt"
	"io"
	"time"
)

// WriteReport prints a per-kernel, per-binary summary and returns whether
// everything passed.
func WriteReport(w io.Writer, results []KernelResult, total time.Duration) bool {
	ok := true
	var pass, fail, skip int
	fmt.Fprintln(w, "\n=== vmtest summary ===")
	for _, r := range results {
		verdict := "PASS"
		if !r.Passed() {
			verdict, ok = "FAIL", false
		}
		fmt.Fprintf(w, "%s kernel %s (%s) in %s, log %s\n", verdict, r.Kernel.Name, r.Release, r.Duration.Round(100*time.Millisecond), r.LogPath)
		for _, b := range r.Binaries {
			p, f, s := count(b.Tests)
			pass, fail, skip = pass+p, fail+f, skip+s
			exit := "exit=?" // no END marker: the guest died or timed out mid-run
			if b.Ended {
				exit = fmt.Sprintf("exit=%d", b.ExitCode)
			}
			fmt.Fprintf(w, "    %-32s %-7s %d passed, %d failed, %d skipped\n", b.Name, exit, p, f, s)
			for _, t := range b.Tests {
				if t.Outcome != Pass {
					fmt.Fprintf(w, "        --- %s: %s\n", t.Outcome, t.Name)
				}
			}
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "    problem: %s\n", p)
		}
	}
	// The plain closing line CI reads, summed over kernels.
	fmt.Fprintf(w, "vmtest: %d passed, %d failed, %d skipped\n", pass, fail, skip)
	fmt.Fprintf(w, "total wall time %s\n", total.Round(100*time.Millisecond))
	return ok
}

func count(tests []TestLine) (pass, fail, skip int) {
	for _, t := range tests {
		switch t.Outcome {
		case Pass:
			pass++
		case Fail:
			fail++
		case Skip:
			skip++
		}
	}
	return pass, fail, skip
}
