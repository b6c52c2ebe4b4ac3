package container

import (
	"errors"
	"os"
	"testing"
)

func TestFindCgroup2Mount(t *testing.T) {
	for file, want := range map[string]string{
		"mountinfo-hybrid":  "/sys/fs/cgroup/unified",
		"mountinfo-v2":      "/sys/fs/cgroup",
		"mountinfo-escaped": `/mnt/my cgroup\v2`,
		"mountinfo-v1":      "",
	} {
		f, err := os.Open("../../testdata/cgroup/" + file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := findCgroup2Mount(f)
		f.Close()
		if want == "" {
			if !errors.Is(err, errNoCgroup2) {
				t.Errorf("%s: got %q, %v; want errNoCgroup2", file, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v; want %q", file, got, err, want)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `\134`: `\`, `tail\04`: `tail\04`, `\999x`: `\999x`, `\`: `\`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
