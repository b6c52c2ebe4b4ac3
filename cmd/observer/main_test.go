package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBadInvocationIsOneLineAndExit2(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--attach", "warp"},
		{"--attach", "nosuchsensor=fentry"},
		{"--watch-comm", "a-name-longer-than-fifteen"},
		{"--sensors", "bogus"},
		{"--sensors", "-latency,rename"},
		{"--ring-buffer-size", "1000"},
		{"--docker-host", "ftp://x"},
		{"replay", "--speed", "-1", "x.jsonl.gz"},
		{"replay", "--speed", "NaN", "x.jsonl.gz"},
	} {
		var stderr bytes.Buffer
		code := dispatch(args, &bytes.Buffer{}, &stderr)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, stderr.String())
		}
		out := stderr.String()
		want := "observer: "
		if sub := args[0]; subcommands[sub] != nil {
			want = "observer " + sub + ": "
		}
		if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, want) {
			t.Errorf("%v: stderr %q, want one line starting with %q", args, out, want)
		}
	}
}

func TestHelpExits0(t *testing.T) {
	var stderr bytes.Buffer
	if code := dispatch([]string{"-h"}, &bytes.Buffer{}, &stderr); code != exitOK {
		t.Errorf("-h: exit %d", code)
	}
	if !strings.Contains(stderr.String(), "-watch-comm") {
		t.Errorf("usage lacks flags: %q", stderr.String())
	}
}
