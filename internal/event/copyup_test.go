package event

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCopyUpJSONRoundTrips(t *testing.T) {
	in := &CopyUp{
		Header: Header{
			Time: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC), Type: TypeCopyUp,
			PID: 10, TID: 10, Comm: "sh", CgroupID: 42, ContainerID: strings.Repeat("b", 64),
		},
		Path: "/var/lib/big", FileType: "regular", Size: ptr(uint64(64 << 20)), BytesCopied: 1 << 20,
		DurationNS: 1500, Result: "ENOSPC", Errno: 28, Trigger: "openat", SyscallNr: 257,
		Nlink: ptr(uint32(2)), HardlinksBroken: ptr(true), MetadataOnly: ptr(false),
	}
	line, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"type":"copy_up"`, `"path":"/var/lib/big"`, `"bytes_copied":1048576`, `"duration_ns":1500`,
		`"result":"ENOSPC"`, `"metadata_only":false`, `"trigger":"openat"`, `"hardlinks_broken":true`, `"container_id":"bbbb`} {
		if !strings.Contains(string(line), k) {
			t.Errorf("%s missing in %s", k, line)
		}
	}
	out, err := Decode(line)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := out.(*CopyUp); !ok || !reflect.DeepEqual(got, in) {
		t.Errorf("round trip: got %+v, want %+v", out, in)
	}
}

func ptr[T any](v T) *T { return &v }
