package systemtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ImageSpec is everything the guest disk is made of. Its hash names the cached
// disk, so an unchanged spec boots the disk of the last run.
type ImageSpec struct {
	Suite    string   // Debian suite of the root filesystem, e.g. bookworm
	Packages []string // mmdebstrap --include
	// Files are copied into the image: guest path -> host path.
	Files map[string]string
	// Modules are /lib/modules/<release> trees copied from the host, one per
	// matrix kernel (the guest's modprobe loads overlay, veth, dm-*).
	Modules  []string
	CacheDir string
}

// Guest paths of the files the harness puts into the image.
const (
	GuestObserver     = "/usr/local/bin/observer"
	GuestRunner       = "/usr/local/bin/systemtest-guest"
	GuestObserverUnit = "/etc/systemd/system/observer.service"
	GuestObserverEnv  = "/etc/default/observer"
	GuestRunnerUnit   = "/etc/systemd/system/systemtest.service"
	GuestPrometheus   = "/etc/prometheus/prometheus.yml"
	GuestDockerConfig = "/etc/docker/daemon.json"
)

// moduleExcludes keeps hardware drivers no guest needs out of the image.
var moduleExcludes = []string{
	"kernel/sound", "kernel/drivers/gpu", "kernel/drivers/media", "kernel/drivers/infiniband",
	"kernel/drivers/usb", "kernel/drivers/scsi", "kernel/drivers/iio", "kernel/drivers/hwmon",
	"kernel/drivers/net/wireless", "kernel/drivers/net/ethernet", "kernel/drivers/staging",
	"kernel/drivers/input", "kernel/drivers/hid", "kernel/drivers/bluetooth", "kernel/net/bluetooth",
	"kernel/net/wireless", "kernel/net/mac80211", "kernel/drivers/isdn", "kernel/drivers/mtd",
}

// ReadPackages reads one package a line; # starts a comment.
func ReadPackages(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("package list: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}

// rootfsHash covers what mmdebstrap gets: the suite and the package list.
func (s ImageSpec) rootfsHash() string {
	h := sha256.New()
	fmt.Fprintf(h, "suite %s\n", s.Suite)
	for _, p := range s.Packages {
		fmt.Fprintf(h, "package %s\n", p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// diskHash adds every file's content and the module trees' releases (their
// modules.dep stands for the tree: a kernel update changes it).
func (s ImageSpec) diskHash() (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "rootfs %s\nformat 1\n", s.rootfsHash())
	var dsts []string
	for dst := range s.Files {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	for _, dst := range dsts {
		if err := hashFile(h, dst, s.Files[dst]); err != nil {
			return "", err
		}
	}
	for _, m := range s.Modules {
		if err := hashFile(h, m, filepath.Join(m, "modules.dep")); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func hashFile(h io.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("image input: %w", err)
	}
	defer f.Close()
	fmt.Fprintf(h, "file %s\n", name)
	_, err = io.Copy(h, f)
	return err
}

// Build returns the path of a disk image for spec, building what is not
// cached: the root filesystem tarball (by suite and packages) and the disk
// (by everything). Older disks are removed; the guest boots with -snapshot,
// so a disk is never changed by a run.
func Build(ctx context.Context, spec ImageSpec) (string, error) {
	if err := os.MkdirAll(spec.CacheDir, 0o755); err != nil {
		return "", err
	}
	sum, err := spec.diskHash()
	if err != nil {
		return "", err
	}
	disk := filepath.Join(spec.CacheDir, "disk-"+sum+".img")
	if _, err := os.Stat(disk); err == nil {
		slog.Info("guest disk unchanged, reusing it", "disk", disk)
		return disk, nil
	}
	tarball := filepath.Join(spec.CacheDir, "rootfs-"+spec.rootfsHash()+".tar")
	if _, err := os.Stat(tarball); err != nil {
		if err := mmdebstrap(ctx, spec, tarball); err != nil {
			return "", err
		}
	} else {
		slog.Info("root filesystem unchanged, reusing it", "tarball", tarball)
	}
	start := time.Now()
	stage := filepath.Join(spec.CacheDir, "stage")
	if err := os.RemoveAll(stage); err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return "", err
	}
	if err := run(ctx, "tar", "-C", stage, "-xf", tarball); err != nil {
		return "", err
	}
	if err := populate(ctx, stage, spec); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(spec.CacheDir, "disk-*.img"))
	tmp := disk + ".tmp"
	os.Remove(tmp)
	// 6 GiB, sparse: the devicemapper loop files and Docker images live here.
	if err := run(ctx, "mke2fs", "-q", "-t", "ext4", "-L", "systemtest", "-d", stage, tmp, "6G"); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, disk); err != nil {
		return "", err
	}
	for _, o := range old {
		os.Remove(o)
	}
	slog.Info("guest disk built", "disk", disk, "took", time.Since(start).Round(time.Second))
	return disk, nil
}

func mmdebstrap(ctx context.Context, spec ImageSpec, tarball string) error {
	start := time.Now()
	slog.Info("building the guest root filesystem with mmdebstrap (about a minute)", "suite", spec.Suite, "packages", len(spec.Packages))
	tmp := tarball + ".tmp"
	os.Remove(tmp)
	// Downloaded packages are kept between builds (a changed list downloads
	// only what is new) and left out of the image.
	debs, err := filepath.Abs(filepath.Join(spec.CacheDir, "debs"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return err
	}
	// The machine's configured apt sources: no mirror is named.
	err = run(ctx, "mmdebstrap", "--variant=apt", "--format=tar", "--skip=download/empty",
		`--setup-hook=mkdir -p "$1"/var/cache/apt/archives/partial`,
		"--setup-hook=sync-in "+debs+" /var/cache/apt/archives/",
		"--customize-hook=sync-out /var/cache/apt/archives "+debs,
		`--customize-hook=rm -f "$1"/var/cache/apt/archives/*.deb`,
		"--include="+strings.Join(spec.Packages, ","), spec.Suite, tmp)
	if err != nil {
		return err
	}
	old, _ := filepath.Glob(filepath.Join(spec.CacheDir, "rootfs-*.tar"))
	for _, o := range old {
		os.Remove(o)
	}
	slog.Info("root filesystem built", "tarball", tarball, "took", time.Since(start).Round(time.Second))
	return os.Rename(tmp, tarball)
}

// populate adds the observer, the harness and the node's configuration, and
// prepares systemd for a headless, quick, deterministic boot.
func populate(ctx context.Context, root string, spec ImageSpec) error {
	for dst, src := range spec.Files {
		mode := os.FileMode(0o644)
		if strings.HasPrefix(dst, "/usr/local/bin/") {
			mode = 0o755
		}
		if err := copyFile(src, filepath.Join(root, dst), mode); err != nil {
			return err
		}
	}
	for _, m := range spec.Modules {
		dst := filepath.Join(root, "lib/modules", filepath.Base(m))
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		args := []string{"-C", m, "-cf", "-"}
		for _, e := range moduleExcludes {
			args = append(args, "--exclude=./"+e)
		}
		args = append(args, ".")
		sh := append([]string{"-c", `tar "$@" | tar -C ` + shellQuote(dst) + ` -xf -`, "tar"}, args...)
		if err := run(ctx, "sh", sh...); err != nil {
			return fmt.Errorf("copying modules %s: %w", m, err)
		}
	}
	writes := map[string]string{
		"/etc/hostname": "systemtest\n",
		// A fixed machine id: not a first boot, so no firstboot prompts.
		"/etc/machine-id": "0b5e7e2fe7a84c3b9d1e2f3a4b5c6d7e\n",
		"/etc/fstab":      "/dev/vda / ext4 rw,noatime 0 1\n",
		// Logs stay in memory: the disk is thrown away after each run anyway.
		"/etc/systemd/journald.conf.d/systemtest.conf": "[Journal]\nStorage=volatile\n",
	}
	for path, content := range writes {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants")
	if err := os.MkdirAll(wants, 0o755); err != nil {
		return err
	}
	for _, unit := range []string{"observer.service", "systemtest.service", "prometheus.service", "docker.service"} {
		link := filepath.Join(wants, unit)
		os.Remove(link)
		target := "/etc/systemd/system/" + unit
		if unit == "prometheus.service" || unit == "docker.service" {
			target = "/lib/systemd/system/" + unit
		}
		if err := os.Symlink(target, link); err != nil {
			return err
		}
	}
	// Units that only slow a test boot down or wait for a console login.
	for _, unit := range []string{
		"apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer", "e2scrub_all.timer",
		"fstrim.timer", "systemd-firstboot.service", "serial-getty@ttyS0.service",
		"getty@tty1.service", "prometheus-node-exporter.service", "lvm2-monitor.service",
		"systemd-networkd-wait-online.service",
	} {
		link := filepath.Join(root, "etc/systemd/system", unit)
		os.Remove(link)
		if err := os.Symlink("/dev/null", link); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}

// run runs a command, its output going to the harness's stderr as progress.
func run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
