package testenv

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseAndMatchModes(t *testing.T) {
	in := "# c\nhost:6.18.*\ttp_btf tracepoint\n6.1  fentry kprobe tp_btf tracepoint\n"
	rows, err := ParseModes(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		vm, release string
		want        []string
		ok          bool
	}{
		{"", "6.18.3-cloud", []string{"tp_btf", "tracepoint"}, true},
		{"", "6.6.1", nil, false},
		{"6.1", "6.1.0-57-amd64", []string{"fentry", "kprobe", "tp_btf", "tracepoint"}, true},
		{"6.12", "6.12.1", nil, false},
		// A VM never takes a host row, even when its release matches the glob.
		{"7.0", "6.18.0", nil, false},
	}
	for _, c := range cases {
		got, ok := MatchModes(rows, c.vm, c.release)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("MatchModes(%q, %q) = %v, %v; want %v, %v", c.vm, c.release, got, ok, c.want, c.ok)
		}
	}
	for _, bad := range []string{"6.1\n", "6.1 a\n6.1 b\n", "host:[ a\n"} {
		if _, err := ParseModes(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

// The committed file parses, and names every matrix kernel.
func TestModesFileCoversMatrix(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, ModesFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := ParseModes(f)
	if err != nil {
		t.Fatal(err)
	}
	kernels, err := os.ReadFile(filepath.Join(root, "testdata/vmtest/kernels.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(kernels), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if _, ok := MatchModes(rows, f[0], ""); !ok {
			t.Errorf("kernel %s of kernels.txt has no row in %s", f[0], ModesFile)
		}
	}
}

func TestModesExceptions(t *testing.T) {
	rows, err := ParseModes(strings.NewReader("5.10\tfentry kprobe -veth/fentry -copyup/fentry\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	if got := r.ForSensor("veth"); !slices.Equal(got, []string{"kprobe"}) {
		t.Errorf("veth: %v, want [kprobe]", got)
	}
	if got := r.ForSensor("rename"); !slices.Equal(got, []string{"fentry", "kprobe"}) {
		t.Errorf("rename: %v, want [fentry kprobe]", got)
	}
	if _, err := ParseModes(strings.NewReader("5.10 fentry -veth\n")); err == nil {
		t.Error("-veth without a mode: want an error")
	}
}
