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
