package config

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	c, err := Parse(nil, Defaults{WatchComms: []string{"dockerd", "runc"}}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != DefaultListen || c.EventsFile != "" || c.LogLevel != slog.LevelInfo || len(c.Attach) != 0 {
		t.Errorf("defaults = %+v", c)
	}
	if !reflect.DeepEqual(c.WatchComms, []string{"dockerd", "runc"}) {
		t.Errorf("watch = %v", c.WatchComms)
	}
}

func TestFlags(t *testing.T) {
	c, err := Parse([]string{"--listen", ":9000", "--events", "-", "--watch-comm", "a, b*", "--attach", "rename=kprobe,signal=tracepoint", "--log-level", "debug"}, Defaults{}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":9000" || c.EventsFile != "-" || !reflect.DeepEqual(c.WatchComms, []string{"a", "b*"}) || c.LogLevel != slog.LevelDebug {
		t.Errorf("got %+v", c)
	}
	if !reflect.DeepEqual(c.Attach, map[string]string{"rename": "kprobe", "signal": "tracepoint"}) {
		t.Errorf("attach = %v", c.Attach)
	}
	c, err = Parse([]string{"--attach", "fentry"}, Defaults{}, io.Discard)
	if err != nil || !reflect.DeepEqual(c.Attach, map[string]string{"*": "fentry"}) {
		t.Errorf("bare mode: %v %v", c.Attach, err)
	}
}

func TestBadInputIsOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"--no-such-flag"},
		{"--listen", "nonsense"},
		{"--log-level", "loud"},
		{"--attach", "rename="},
		{"--attach", "a=kprobe,a=fentry"},
		{"--ring-buffer-size", "-1"},
		{"--ring-buffer-size", "4294967296"}, // wrapped to 0 in the kernel's 32 bits
		{"--ring-buffer-size", "1073741824"}, // took 4.2 GB RSS
		{"--ring-buffer-size", "33554432"},
		{"--ring-buffer-size", "1000"},
		{"--listen", ":99999"},
		{"--listen", "no-such-host.invalid:9810"}, // refused, never looked up
		{"--listen", "localhost:9810"},
		{"--listen", "unix:"},
		{"--listen", "127.0.0.1:http"},
		{"stray"},
	} {
		_, err := Parse(args, Defaults{}, io.Discard)
		if err == nil {
			t.Errorf("%v: want error", args)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error spans lines: %q", args, err)
		}
	}
	var usage strings.Builder
	if _, err := Parse([]string{"-h"}, Defaults{}, &usage); !errors.Is(err, flag.ErrHelp) || !strings.Contains(usage.String(), "-listen") {
		t.Errorf("-h: err %v usage %q", err, usage.String())
	}
}

// What --listen accepts: IP literals, every address, port 0, unix:PATH (the
// socket of --listen unix:PATH), all without a lookup.
func TestListenAccepted(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:9810", ":9810", "[::1]:0", "0.0.0.0:65535", "unix:/run/observer.sock"} {
		if err := CheckListen(addr); err != nil {
			t.Errorf("%q: %v", addr, err)
		}
	}
	c, err := Parse([]string{"--ring-buffer-size", "16777216"}, Defaults{}, io.Discard)
	if err != nil || c.RingBufferBytes != MaxRingBufferBytes {
		t.Errorf("the maximum ring buffer: %v", err)
	}
}
