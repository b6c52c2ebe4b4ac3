package testenv

import (
	"testing"

	"github.com/vishvananda/netlink"
)

// VethPair creates the veth pair name <-> peer in this network namespace and
// returns the name end; whichever end is still here when the test ends is
// deleted (deleting one end deletes the pair). It requires root.
func VethPair(t testing.TB, name, peer string) netlink.Link {
	t.Helper()
	RequireRoot(t)
	la := netlink.NewLinkAttrs()
	la.Name = name
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: peer}); err != nil {
		t.Fatalf("create veth %s: %v", name, err)
	}
	t.Cleanup(func() {
		for _, n := range []string{name, peer} {
			if l, err := netlink.LinkByName(n); err == nil {
				netlink.LinkDel(l)
			}
		}
	})
	link, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return link
}
