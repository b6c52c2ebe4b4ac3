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
		{"--ring-buffer-size", "4294967296"},
		{"--listen", ":99999"},
		{"--listen", "no-such-host.invalid:9810"},
		{"replay", "--listen", "no-such-host.invalid:1", "x.jsonl.gz"},
		{"--docker-host", "ftp://x"},
		{"--log-format", "xml"},
		{"help", "no-such-command"},
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
		if _, ok := subcommands[args[0]]; ok {
			sub := args[0]
			want = "observer " + sub + ": "
		}
		if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, want) {
			t.Errorf("%v: stderr %q, want one line starting with %q", args, out, want)
		}
	}
}

func TestHelpListsEverySubcommand(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		var stdout, stderr bytes.Buffer
		if code := dispatch(args, &stdout, &stderr); code != exitOK {
			t.Errorf("%v: exit %d (stderr %q)", args, code, stderr.String())
		}
		out := stdout.String()
		if !strings.Contains(out, "-watch-comm") || !strings.Contains(out, "-log-format") {
			t.Errorf("%v: usage lacks the daemon flags: %q", args, out)
		}
		for name, cmd := range subcommands {
			if !strings.Contains(out, "  "+name+" ") || !strings.Contains(out, cmd.summary) {
				t.Errorf("%v: usage lacks subcommand %s with its summary", args, name)
			}
		}
	}
}

// TestSubcommandHelp: each subcommand's flags, both as `observer help NAME`
// and `observer NAME --help`, exit 0.
func TestSubcommandHelp(t *testing.T) {
	for name := range subcommands {
		if name == "help" || name == "version" {
			continue
		}
		for _, args := range [][]string{{"help", name}, {name, "--help"}} {
			var stdout, stderr bytes.Buffer
			if code := dispatch(args, &stdout, &stderr); code != exitOK {
				t.Errorf("%v: exit %d (stderr %q)", args, code, stderr.String())
			}
			if out := stdout.String(); !strings.Contains(out, "Usage: observer "+name) || !strings.Contains(out, "  -") {
				t.Errorf("%v: %q, want its usage line and flags", args, out)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		var stdout, stderr bytes.Buffer
		if code := dispatch(args, &stdout, &stderr); code != exitOK {
			t.Errorf("%v: exit %d (stderr %q)", args, code, stderr.String())
		}
		if out := stdout.String(); !strings.HasPrefix(out, "observer ") || !strings.Contains(out, "revision") || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: %q, want one line with the version and revision", args, out)
		}
	}
}
