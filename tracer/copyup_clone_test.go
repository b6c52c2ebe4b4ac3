package tracer

import (
	"errors"
	"testing"

	"github.com/observer-dev/observer/internal/testenv"
)

func TestCloneTargetChoice(t *testing.T) {
	for _, c := range []struct {
		name string
		has  func(string) (bool, error)
		want string
	}{
		{"both (6.1)", func(string) (bool, error) { return true, nil }, cloneInner},
		{"outer only (6.12)", func(fn string) (bool, error) { return fn == cloneOuter, nil }, cloneOuter},
		{"no kernel BTF", func(string) (bool, error) { return false, errors.New("no BTF") }, cloneOuter},
	} {
		if got := cloneTarget(c.has); got != c.want {
			t.Errorf("%s: clone hook %s, want %s", c.name, got, c.want)
		}
	}
}

// TestCopyUpCloneHook checks, against this kernel's BTF, that each copyup mode
// keeps exactly one clone hook and that it is one the kernel has. In the QEMU
// matrix it pins the kernels' difference: 6.1's overlay clones through
// do_clone_file_range, 6.12's through vfs_clone_file_range (TestCopyUp then
// attaches the chosen programs there).
func TestCopyUpCloneHook(t *testing.T) {
	want := map[string]string{"6.1": cloneInner, "6.12": cloneOuter}[testenv.VMKernel()]
	for _, mode := range []Mode{ModeFentry, ModeKprobe} {
		spec, err := loadCopyup()
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range spec.Programs {
			if !mode.owns(p.SectionName) {
				delete(spec.Programs, name)
			}
		}
		if err := configureCopyUp(spec, &Options{}); err != nil {
			t.Fatal(err)
		}
		var kept []string
		for _, p := range spec.Programs {
			if fn := hookTarget(p.SectionName); fn == cloneInner || fn == cloneOuter {
				kept = append(kept, fn)
			}
		}
		if len(kept) != 1 {
			t.Fatalf("%s: clone hooks kept %v, want exactly one", mode, kept)
		}
		ok, err := kernelHasFunc(kept[0])
		if err != nil {
			t.Skipf("no kernel BTF: %v", err)
		}
		if !ok {
			t.Fatalf("%s: kept the hook on %s, which this kernel's BTF lacks", mode, kept[0])
		}
		if want != "" && kept[0] != want {
			t.Fatalf("%s on %s: clone hook %s, want %s", mode, testenv.VMKernel(), kept[0], want)
		}
		t.Logf("%s: clone hook %s", mode, kept[0])
	}
}
