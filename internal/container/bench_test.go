package container

import "testing"

// BenchmarkLookupHit is the event hot path: an indexed container cgroup with a known name.
func BenchmarkLookupHit(b *testing.B) {
	r, err := NewResolver(Options{DockerHost: "unix:///nonexistent.sock", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	r.CgroupCreated(42, "/docker/"+testID1)
	r.meta.put(testID1, meta{name: "web", image: "nginx", state: metaKnown})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r.Lookup(42).Name != "web" {
				b.Fatal("miss")
			}
		}
	})
}
