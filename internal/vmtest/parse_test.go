package vmtest

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseKernels(t *testing.T) {
	in := "# comment\n\n6.1\tlinux-image-amd64\t/boot/vmlinuz-6.1.*\n6.12  linux-image-6.12-amd64  /boot/vmlinuz-6.12.*\n" +
		"6.1-arm64\tlinux-image-arm64:arm64\t/k/6.1-arm64/boot/vmlinuz-6.1.*-arm64\tarm64\n"
	ks, err := ParseKernels(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 3 || ks[1].Name != "6.12" || ks[1].Package != "linux-image-6.12-amd64" {
		t.Fatalf("got %+v", ks)
	}
	if ks[0].Arch.Name != "amd64" || ks[2].Arch.Name != "arm64" || ks[2].Arch.QEMU != "qemu-system-aarch64" {
		t.Errorf("architectures: %q %q %q", ks[0].Arch.Name, ks[2].Arch.Name, ks[2].Arch.QEMU)
	}
	if got := OfArch(ks, "arm64"); len(got) != 1 || got[0].Name != "6.1-arm64" {
		t.Errorf("OfArch(arm64) = %+v", got)
	}
	for _, bad := range []string{"6.1\tpkg\n", "a b c\na d e\n", "a b c riscv64\n", "a b c arm64 x\n"} {
		if _, err := ParseKernels(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
	if _, err := Filter(ks, []string{"5.4"}); err == nil {
		t.Error("Filter of unknown kernel: want error")
	}
}

func TestLoadOrder(t *testing.T) {
	dep := `kernel/fs/overlayfs/overlay.ko.xz:
kernel/net/bridge/bridge.ko.xz: kernel/net/802/stp.ko.xz kernel/net/llc/llc.ko.xz
kernel/net/802/stp.ko.xz: kernel/net/llc/llc.ko.xz
kernel/net/llc/llc.ko.xz:
kernel/drivers/net/veth.ko.xz:
`
	md, err := ParseModulesDep(strings.NewReader(dep))
	if err != nil {
		t.Fatal(err)
	}
	got, err := md.LoadOrder([]string{"overlay", "bridge", "veth", "llc"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"overlay", "llc", "stp", "bridge", "veth"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := md.LoadOrder([]string{"nope"}); err == nil {
		t.Error("unknown module: want error")
	}
	cyc, _ := ParseModulesDep(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"))
	if _, err := cyc.LoadOrder([]string{"a"}); err == nil {
		t.Error("cycle: want error")
	}
}

func TestConsole(t *testing.T) {
	log := `SeaBIOS
OBSERVER-VMTEST BOOTED kernel=6.1 release=6.1.0-57-amd64` + "\r" + `
OBSERVER-VMTEST BEGIN tracer
=== RUN   TestA
OBSERVER-RESULT {"sensor":"rename","mode":"fentry"}
--- PASS: TestA (0.01s)
    --- SKIP: TestA/sub (0.00s)
--- FAIL: TestB (0.02s)
partial lineOBSERVER-RESULT not json
OBSERVER-VMTEST END tracer exit=1
OBSERVER-VMTEST BEGIN probe
[    4.5] Kernel panic - not syncing: sysrq triggered crash
`
	c := NewConsole("6.1")
	for _, l := range strings.Split(log, "\n") {
		c.Line(l)
	}
	if !c.Booted || c.Release != "6.1.0-57-amd64" || c.Done {
		t.Fatalf("booted=%v release=%q done=%v", c.Booted, c.Release, c.Done)
	}
	if len(c.Binaries) != 2 || c.Binaries[0].ExitCode != 1 || len(c.Binaries[0].Tests) != 3 {
		t.Fatalf("binaries: %+v", c.Binaries[0])
	}
	if r := c.Results; len(r) != 1 || r[0]["kernel"] != "6.1" || r[0]["binary"] != "tracer" || r[0]["mode"] != "fentry" {
		t.Fatalf("results: %v", r)
	}
	probs := strings.Join(c.Problems([]string{"tracer", "probe", "other"}), "\n")
	for _, want := range []string{"kernel panic", "tracer: exit status 1", "--- FAIL: TestB", "probe: no end marker", "other: never started", "no DONE marker", "malformed OBSERVER-RESULT"} {
		if !strings.Contains(probs, want) {
			t.Errorf("problems lack %q:\n%s", want, probs)
		}
	}
}

func TestKernelRoot(t *testing.T) {
	for glob, want := range map[string]string{
		"/boot/vmlinuz-6.1.*-amd64":                                  "/",
		"/var/cache/observer/kernels/5.10/boot/vmlinuz-5.10.*-amd64": "/var/cache/observer/kernels/5.10",
		"relative/boot/vmlinuz-5.10":                                 "",
		"/var/cache/*/boot/vmlinuz-5.10":                             "",
		"/var/cache/vmlinuz-5.10":                                    "",
	} {
		got, err := Kernel{Name: "k", Glob: glob}.Root()
		if want == "" {
			if err == nil {
				t.Errorf("%s: root %q, want an error", glob, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%s: root %q, %v; want %q", glob, got, err, want)
		}
	}
}
