package testenv_test

import (
	"strings"
	"testing"

	"github.com/observer-dev/observer/internal/testenv"
)

func TestContainerCgroupHasID(t *testing.T) {
	res := testenv.RunContainer(t, testenv.ContainerOptions{}, "cat /proc/self/cgroup")
	if res.ExitCode != 0 {
		t.Fatalf("exit %d, output:\n%s", res.ExitCode, res.Output)
	}
	if !strings.Contains(res.Output, "/docker/"+res.ID) {
		t.Fatalf("cgroup path does not contain /docker/%s:\n%s", res.ID, res.Output)
	}
	testenv.Result(t, map[string]any{"test": "container_cgroup", "ok": true})
}

func TestContainerMoveLowerDir(t *testing.T) {
	opts := testenv.ContainerOptions{Lower: map[string]string{
		"data/src/":     "",
		"data/src/file": "hello\n",
	}}
	c := testenv.NewContainer(t, opts)
	res, err := c.Run(t.Context(), "mv /data/src /data/dst && cat /data/dst/file && ! test -e /data/src")
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || !strings.Contains(res.Output, "hello") {
		t.Fatalf("exit %d, output:\n%s", res.ExitCode, res.Output)
	}
}
