package event

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// AppendJSON writes what encoding/json writes, for every field: fill each
// field of the type by reflection (so a field added later is covered) with
// values that exercise escaping, and compare.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	strs := []string{"", "plain/path", `q"uote\back`, "<html>&", "ctl\x01\n\t", "é ü 日本", "bad\xffutf8", "line\u2028sep"}
	zones := []*time.Location{time.UTC, time.FixedZone("X", 5*3600+30*60), time.FixedZone("LMT", 3600+7), time.Local}
	times := []time.Time{time.Unix(1764680000, 123456789), time.Unix(1764680000, 0), {}, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}
	n := 0
	for si, s := range strs {
		for ti, tm := range times {
			for zi, z := range zones {
				ev := &RenameExdev{}
				fill(reflect.ValueOf(ev).Elem(), s, uint64(si*31+ti*7+zi), tm.In(z))
				if si%2 == 0 { // the omitempty fields empty, too
					ev.ContainerName, ev.ContainerImage, ev.MntNS, ev.NetNS = "", "", 0, 0
				}
				want, wantErr := json.Marshal(ev)
				got, gotErr := AppendJSON([]byte("prefix"), ev)
				if (wantErr != nil) != (gotErr != nil) || wantErr == nil && string(got) != "prefix"+string(want) {
					t.Fatalf("event %+v:\nencoding/json %s (%v)\nAppendJSON    %s (%v)", ev, want, wantErr, got, gotErr)
				}
				n++
			}
		}
	}
	other := &Signal{Header: Header{Type: TypeSignal, Time: time.Unix(1, 0)}, Signal: "SIGKILL"}
	want, _ := json.Marshal(other)
	if got, _ := AppendJSON(nil, other); string(got) != string(want) {
		t.Errorf("signal: %s, want %s", got, want)
	}
	t.Logf("%d rename events compared", n)
}

// fill sets every field of v: strings to s, integers from seed, times to tm.
func fill(v reflect.Value, s string, seed uint64, tm time.Time) {
	for i := range v.NumField() {
		f := v.Field(i)
		seed = seed*6364136223846793005 + 1442695040888963407
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(tm))
		case f.Kind() == reflect.Struct:
			fill(f, s, seed, tm)
		case f.Kind() == reflect.String:
			f.SetString(s)
		case f.CanUint():
			f.SetUint(seed >> (64 - f.Type().Bits()))
		case f.CanInt():
			f.SetInt(int64(seed >> (65 - f.Type().Bits())))
		default:
			panic("fill: unhandled field kind " + f.Kind().String())
		}
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	ev := &RenameExdev{Header: Header{Time: time.Now(), Type: TypeRenameExdev, PID: 100, TID: 101, Comm: "mv", CgroupID: 4242,
		ContainerID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", MntNS: 4026531841},
		OldPath: "/var/lib/app/data/dir", NewPath: "/var/lib/app/data/moved"}
	b.Run("encoding/json", func(b *testing.B) {
		for range b.N {
			json.Marshal(ev)
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		for range b.N {
			buf, _ = AppendJSON(buf[:0], ev)
		}
	})
}
