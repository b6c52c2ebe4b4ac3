package event

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestTypesAreSortedAndEachDecodes(t *testing.T) {
	types := Types()
	if !slices.IsSorted(types) {
		t.Errorf("Types() = %v, not sorted", types)
	}
	for _, want := range []string{TypeCopyUp, TypeSignal, TypeDaemonExit, TypeRenameExdev, TypeCgroupMkdir, TypeCgroupRmdir,
		TypeSemCreate, TypeSemRemove, TypeVethCreate, TypeVethDelete, TypeResidue} {
		if !slices.Contains(types, want) {
			t.Errorf("Types() lacks %s", want)
		}
	}
	for _, typ := range types {
		line, _ := json.Marshal(map[string]any{"type": typ, "pid": 7})
		ev, err := Decode(line)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		if h := ev.Hdr(); h.Type != typ || h.PID != 7 {
			t.Errorf("%s: decoded header %+v", typ, h)
		}
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering copy_up again did not panic")
		}
	}()
	Register(TypeCopyUp, func() Event { return new(CopyUp) })
}

func TestOptionalInterfaces(t *testing.T) {
	cu := &CopyUp{Header: Header{Type: TypeCopyUp}, Path: "etc/passwd", DurationNS: 1500000, Result: "ok", Trigger: "openat"}
	if d := Timed(cu).Duration(); d.String() != "1.5ms" {
		t.Errorf("copy-up duration %v, want 1.5ms", d)
	}
	want := "copy-up took 1.5ms: bytes_copied=0 duration_ns=1.5e+06 path=etc/passwd result=ok syscall_nr=0 trigger=openat"
	if got := Summarizer(cu).Summary(); got != want {
		t.Errorf("copy-up summary\n got %q\nwant %q", got, want)
	}
	cu.DurationNS = 0
	if got := cu.Summary(); got != "bytes_copied=0 duration_ns=0 path=etc/passwd result=ok syscall_nr=0 trigger=openat" {
		t.Errorf("copy-up summary without a duration: %q", got)
	}
	r := &Residue{Resource: "veth", Name: "veth1", Ifindex: 9, Reason: "peer gone", Remove: "ip link del veth1",
		Creator: Creator{Known: true, PID: 42, Comm: "dockerd"}}
	if pid, comm := Leftover(r).LeftBy(); pid != 42 || comm != "dockerd" {
		t.Errorf("LeftBy = %d %s, want 42 dockerd", pid, comm)
	}
	if got := r.Summary(); got != "veth veth1 (ifindex 9) left behind: peer gone; remove with: ip link del veth1" {
		t.Errorf("residue summary %q", got)
	}
}
