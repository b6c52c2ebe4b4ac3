package residue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/observer-dev/observer/internal/testenv"
)

// TestVethPeerNamespaceGone: a veth pair with one end in a named netns is not
// residue; once the name is deleted while the namespace lives on (pinned here
// by an open fd, as Docker's sandbox file pins it after dockerd dies), the host
// end is residue, and --clean veth removes it.
func TestVethPeerNamespaceGone(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) (apt-get install iproute2)")
	}
	ns := fmt.Sprintf("obsres%d", os.Getpid())
	host := fmt.Sprintf("obsr%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	link := testenv.VethPair(t, host, host+"p")
	pin, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer pin.Close()
	peer, err := netlink.LinkByName(host + "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(peer, int(pin)); err != nil {
		t.Fatalf("move peer: %v", err)
	}
	idx := int32(link.Attrs().Index)

	d := New(Options{Grace: time.Nanosecond})
	d.Reconcile(context.Background())
	if it := findVeth(d.Residue(), idx); it != nil {
		t.Fatalf("veth with its peer in a named namespace reported: %+v", it)
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del: %v: %s", err, out)
	}
	time.Sleep(time.Millisecond)
	d.Reconcile(context.Background())
	time.Sleep(time.Millisecond)
	it := findVeth(d.Residue(), idx)
	if it == nil {
		t.Fatalf("host end %s not reported; inventory %+v", host, d.Veths())
	}
	if it.Name != host || it.Remove != "ip link del "+host {
		t.Fatalf("item %+v", it)
	}
	var out bytes.Buffer
	if err := Clean([]Item{*it}, CleanVeth, 0, &out); err != nil {
		t.Fatalf("clean: %v %s", err, out.String())
	}
	if _, err := netlink.LinkByIndex(int(idx)); err == nil {
		t.Fatalf("veth still there after clean: %s", out.String())
	}
	testenv.Result(t, map[string]any{"test": "veth_peer_ns_gone", "reported": true, "cleaned": true})
}

func findVeth(items []Item, idx int32) *Item {
	for i := range items {
		if items[i].Resource == ResourceVeth && items[i].Ifindex == idx {
			return &items[i]
		}
	}
	return nil
}
