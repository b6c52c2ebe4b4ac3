package vmtest

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// cpioWriter writes the "newc" cpio format the kernel unpacks as initramfs.
// It is a few dozen lines, so no cpio dependency is pulled in.
type cpioWriter struct {
	w    io.Writer
	ino  uint32
	dirs map[string]bool
}

func newCPIO(w io.Writer) *cpioWriter {
	return &cpioWriter{w: w, ino: 1, dirs: map[string]bool{".": true, "/": true}}
}

const (
	modeDir     = 0o040000
	modeFile    = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

func (c *cpioWriter) header(name string, mode uint32, size int) error {
	return c.headerDev(name, mode, size, 0, 0)
}

func (c *cpioWriter) headerDev(name string, mode uint32, size int, rmajor, rminor uint32) error {
	c.ino++
	nlink := 1
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	// Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check.
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	if _, err := io.WriteString(c.w, hdr+name+"\x00"); err != nil {
		return err
	}
	return c.pad(len(hdr) + len(name) + 1)
}

func (c *cpioWriter) pad(n int) error {
	if r := n % 4; r != 0 {
		_, err := c.w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

// mkdirAll adds name and its parents as directories, once each.
func (c *cpioWriter) mkdirAll(name string) error {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if name == "" || c.dirs[name] {
		return nil
	}
	if err := c.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	c.dirs[name] = true
	return c.header(name, modeDir|0o755, 0)
}

func (c *cpioWriter) file(name string, perm uint32, data []byte) error {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if err := c.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := c.header(name, modeFile|perm, len(data)); err != nil {
		return err
	}
	if _, err := c.w.Write(data); err != nil {
		return err
	}
	return c.pad(len(data))
}

// copyFile adds a host file, keeping its permission bits.
func (c *cpioWriter) copyFile(name, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	return c.file(name, uint32(st.Mode().Perm()), data)
}

func (c *cpioWriter) symlink(name, target string) error {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if err := c.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	if err := c.header(name, modeSymlink|0o777, len(target)); err != nil {
		return err
	}
	if _, err := io.WriteString(c.w, target); err != nil {
		return err
	}
	return c.pad(len(target))
}

// charDev adds a device node. /dev/console must exist in the archive: the
// kernel opens it for init's stdio before any devtmpfs is mounted.
func (c *cpioWriter) charDev(name string, major, minor uint32) error {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	if err := c.mkdirAll(path.Dir(name)); err != nil {
		return err
	}
	return c.headerDev(name, modeCharDev|0o600, 0, major, minor)
}

// close writes the trailer that ends one archive. The kernel accepts several
// archives back to back, which is how the per-kernel modules are appended to
// the shared part without repacking it.
func (c *cpioWriter) close() error {
	return c.header("TRAILER!!!", 0, 0)
}
