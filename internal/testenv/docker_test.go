package testenv

import (
	"strings"
	"testing"
)

func TestDockerdRunsABusyboxContainer(t *testing.T) {
	d := StartDockerd(t)
	image := d.ImportBusybox(t)
	out, err := d.CLI("run", "--rm", "--name", "testenv-probe", image, "sh", "-c", "cat /proc/self/cgroup; echo done")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "/docker/") || !strings.Contains(out, "done") {
		t.Fatalf("container output %q: want a /docker/<id> cgroup", out)
	}
}
