package container

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
)

// walk seeds the index with every cgroup under the root. On cgroup2 the
// cgroup id is the directory's inode number. Cgroups that vanish mid-walk are
// skipped; the rmdir tracepoint covers them.
func (r *Resolver) walk() (int, error) {
	type found struct {
		id  uint64
		ctr string
	}
	var all []found
	err := filepath.WalkDir(r.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == r.root {
				return err
			}
			if !errors.Is(err, fs.ErrNotExist) {
				r.log.Debug("walk cgroup", "path", p, "err", err)
			}
			return nil // keep walking the siblings
		}
		if !d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		rel, err := filepath.Rel(r.root, p)
		if err != nil {
			return nil
		}
		all = append(all, found{id: st.Ino, ctr: IDFromCgroupPath("/" + rel)})
		return nil
	})
	if err != nil {
		return 0, err
	}
	var gone []string
	r.mu.Lock()
	for _, f := range all {
		gone = append(gone, r.idx.add(f.id, f.ctr, true)...)
	}
	r.mu.Unlock()
	r.emitGone(gone)
	return len(all), nil
}
