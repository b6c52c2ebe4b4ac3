package container

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

func TestIDFromCgroupPathTable(t *testing.T) {
	f, err := os.Open("../../testdata/cgroup/paths.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		path, want, ok := strings.Cut(text, "\t")
		if !ok {
			t.Fatalf("paths.txt:%d: no TAB in %q", line, text)
		}
		if want == "-" {
			want = ""
		}
		if got := IDFromCgroupPath(path); got != want {
			t.Errorf("paths.txt:%d: IDFromCgroupPath(%q) = %q, want %q", line, path, got, want)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 30 {
		t.Fatalf("only %d cases read from paths.txt", n)
	}
}

func TestIDFromCgroupPathOdd(t *testing.T) {
	for _, p := range []string{"", "/", "//", ":", "::", ".scope", "-.scope", "a:b:", strings.Repeat("/", 100)} {
		if got := IDFromCgroupPath(p); got != "" {
			t.Errorf("IDFromCgroupPath(%q) = %q, want \"\"", p, got)
		}
	}
}

func TestShortID(t *testing.T) {
	id := "3f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a49382716f5e4d3c2b1a0f9e8d7c6"
	for in, want := range map[string]string{"": "", id: "3f1c2b9e8d7a", "abc": "abc", id[:12]: id[:12]} {
		if got := ShortID(in); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzIDFromCgroupPath(f *testing.F) {
	f.Add("/docker/3f1c2b9e8d7a6f5e4d3c2b1a0f9e8d7c6b5a49382716f5e4d3c2b1a0f9e8d7c6")
	f.Add("/a:b:c")
	f.Fuzz(func(t *testing.T, p string) {
		if id := IDFromCgroupPath(p); id != "" && (!isID(id) || !strings.Contains(p, id)) {
			t.Fatalf("IDFromCgroupPath(%q) = %q", p, id)
		}
	})
}
