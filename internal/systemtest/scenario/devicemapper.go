package scenario

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	dockerConfig = "/etc/docker/daemon.json"
	// dmImage is a busybox-only image for the devicemapper daemon (its graph
	// is separate from overlay2's; a small image imports fast).
	dmImage = "dmtest:latest"
)

// dmCookies lists the udev-cookie semaphore arrays (key 0x0d4dXXXX) in
// /proc/sysvipc/sem: semid by key.
func dmCookies() (map[int]string, error) {
	b, err := os.ReadFile("/proc/sysvipc/sem")
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		key, err1 := strconv.ParseInt(f[0], 10, 64)
		id, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			continue
		}
		k := fmt.Sprintf("0x%08x", uint32(key))
		if strings.HasPrefix(k, "0x0d4d") {
			out[id] = k
		}
	}
	return out, nil
}

// semResidue: dockerd on the devicemapper driver (loop-lvm) is SIGKILLed
// during container create/remove loops. libdevmapper's udev cookies it leaves
// are residue with dockerd as their creator, observer_sem_arrays_used_ratio
// moves, and `observer residue --clean dm-sem` removes only those.
func semResidue(ctx context.Context, n *Node, t *T) error {
	orig, err := os.ReadFile(dockerConfig)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(noRestart), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(noRestart, []byte("[Service]\nRestart=no\n"), 0o644); err != nil {
		return err
	}
	defer func() {
		// Back to overlay2 with auto-restart, as the node was.
		bg := context.Background()
		os.WriteFile(dockerConfig, orig, 0o644)
		os.Remove(noRestart)
		Sh(bg, "systemctl", "daemon-reload")
		restartDocker(bg)
	}()
	for _, m := range []string{"dm_mod", "dm_thin_pool", "loop"} {
		if _, err := Sh(ctx, "modprobe", m); err != nil {
			return Unavailable("devicemapper: modprobe %s: %v", m, err)
		}
	}
	if err := os.WriteFile(dockerConfig, []byte(`{"debug": true, "storage-driver": "devicemapper"}`+"\n"), 0o644); err != nil {
		return err
	}
	if _, err := Sh(ctx, "systemctl", "daemon-reload"); err != nil {
		return err
	}
	if err := restartDocker(ctx); err != nil {
		return fmt.Errorf("dockerd on devicemapper: %w", err)
	}
	info, err := Docker(ctx, "info")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "Storage Driver: devicemapper") {
		return fmt.Errorf("dockerd did not start on devicemapper:\n%s", info)
	}
	udevSync := "unknown"
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Udev Sync Supported: "); ok {
			udevSync = v
		}
	}
	t.Logf("dockerd on devicemapper (loop-lvm), udev sync supported: %s", udevSync)
	if err := importTiny(ctx); err != nil {
		return err
	}
	ratioBefore, err := n.WaitQuery(ctx, `observer_sem_arrays_used_ratio`, 20*time.Second, func(float64) bool { return true })
	if err != nil {
		return err
	}
	// A semaphore that is not a cookie: --clean dm-sem must leave it.
	out, err := Sh(ctx, "ipcmk", "-S", "1")
	if err != nil {
		return err
	}
	f := strings.Fields(out)
	control, _ := strconv.Atoi(f[len(f)-1])
	defer Sh(context.Background(), "ipcrm", "-s", strconv.Itoa(control))

	mark := n.Mark()
	var leaked map[int]string
	kills := 0
	for kills < 3 {
		kills++
		if err := dmKillRound(ctx, t, kills); err != nil {
			return err
		}
		leaked, err = dmCookies()
		if err != nil {
			return err
		}
		if len(leaked) > 0 {
			break
		}
		if err := restartDocker(ctx); err != nil {
			return err
		}
	}
	made := n.Events(mark, func(e Event) bool {
		return e.Str("type") == "sem_create" && strings.HasPrefix(fmt.Sprintf("0x%08x", uint32(int32(e.Num("key")))), "0x0d4d")
	})
	t.Logf("%d SIGKILLs; %d udev cookies created (sem_create events), %d left: %v", kills, len(made), len(leaked), leaked)
	if len(made) == 0 {
		return fmt.Errorf("no sem_create of a udev cookie seen (udev sync %s; cookies left: %v)", udevSync, leaked)
	}
	if len(leaked) == 0 {
		return fmt.Errorf("dockerd on devicemapper made %d udev cookies; %d SIGKILLs with udev held left none: the residue report was not exercised", len(made), kills)
	}
	for id, key := range leaked {
		it, err := waitResidue(ctx, guestGrace+5*guestInterval+10*time.Second, isSem(id))
		if err != nil {
			return fmt.Errorf("leaked cookie %d (key %s) not reported: %w", id, key, err)
		}
		if it.Kind != "dm_udev_cookie" || it.Creator.Comm != "dockerd" {
			return fmt.Errorf("cookie %d reported as kind %q creator %q, want dm_udev_cookie by dockerd", id, it.Kind, it.Creator.Comm)
		}
		t.Logf("residue: %s; remove: %s", it.Reason, it.Remove)
	}
	ratioAfter, err := n.WaitQuery(ctx, `observer_sem_arrays_used_ratio`, 20*time.Second, func(v float64) bool { return v > ratioBefore.Value })
	if err != nil {
		return fmt.Errorf("observer_sem_arrays_used_ratio did not move from %v: %w", ratioBefore.Value, err)
	}
	out, err = Sh(ctx, "observer", "residue", "--clean", "dm-sem", "--older-than", "0s")
	if err != nil {
		return err
	}
	t.Logf("observer residue --clean dm-sem:\n%s", out)
	left, err := dmCookies()
	if err != nil {
		return err
	}
	// Only the leaked cookies must be gone. A client of docker.sock (the
	// observer's resolver, for one) socket-activates a new dockerd after the
	// kill, and its cookies of the moment are live: --clean leaves them, as
	// it must (seen on 6.12: a new cookie during the check).
	var still []string
	for id, key := range leaked {
		if left[id] == key {
			still = append(still, fmt.Sprintf("%d (key %s)", id, key))
		}
	}
	if len(still) > 0 {
		return fmt.Errorf("leaked cookies left after --clean dm-sem: %v", still)
	}
	for id, key := range left {
		if _, was := leaked[id]; !was {
			t.Logf("cookie %d (key %s) of the dockerd running now left alone", id, key)
		}
	}
	if _, err := Sh(ctx, "ipcs", "-s", "-i", strconv.Itoa(control)); err != nil {
		return fmt.Errorf("--clean dm-sem removed the non-cookie semaphore %d: %w", control, err)
	}
	t.Fact("dockerd on devicemapper SIGKILLed in create/remove loops while udev lagged: leaked udev cookies reported as dm_udev_cookie by dockerd, observer_sem_arrays_used_ratio rose, `--clean dm-sem` removed only them")
	t.Measure("%d SIGKILLs, %d cookies made, %d leaked; used ratio %.4f -> %.4f", kills, len(made), len(leaked), ratioBefore.Value, ratioAfter.Value)
	return nil
}

// dmKillRound SIGKILLs dockerd while one of its udev cookies is outstanding.
// libdevmapper creates a cookie per device-mapper operation, udev's rules
// release it (dmsetup udevcomplete) and the waiting dockerd removes it: a few
// milliseconds, which a random kill almost never hits (3 of 3 kills left
// nothing, with 34 cookies made). So udev's exec queue is held, as a slow
// udev under load holds it, until a cookie exists; the kill lands at a random
// moment up to a second after that, and the queue runs again. What leaks is
// what leaks on a real node: a cookie whose waiter died.
func dmKillRound(ctx context.Context, t *T, round int) error {
	if _, err := Sh(ctx, "udevadm", "control", "--stop-exec-queue"); err != nil {
		return err
	}
	defer Sh(context.Background(), "udevadm", "control", "--start-exec-queue")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	count := 0
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			id, err := Docker(ctx, "create", dmImage, "true")
			if err == nil {
				Docker(ctx, "rm", id)
				count++
			} else {
				time.Sleep(200 * time.Millisecond)
			}
		}
	})
	start := time.Now()
	for {
		cookies, err := dmCookies()
		if err != nil {
			return err
		}
		if len(cookies) > 0 || time.Since(start) > time.Minute {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Duration(rand.IntN(1000)) * time.Millisecond)
	delay := time.Since(start)
	// The loop stops first: its next `docker create` would socket-activate a
	// new dockerd.
	close(stop)
	pid, err := mainPID(ctx, "docker")
	if err == nil && pid > 0 {
		_, err = Sh(ctx, "kill", "-KILL", strconv.Itoa(pid))
	}
	wg.Wait()
	t.Logf("round %d: dockerd pid %d SIGKILLed %s after create/remove loops started, udev's exec queue held (%d create/remove)", round, pid, delay.Round(time.Millisecond), count)
	return err
}

// importTiny imports a busybox-only image.
func importTiny(ctx context.Context) error {
	_, err := Sh(ctx, "sh", "-c", `d=$(mktemp -d) && mkdir -p $d/bin && cp /bin/busybox $d/bin/ && ln -s busybox $d/bin/true && ln -s busybox $d/bin/sh && tar -C $d -c . | docker import - `+dmImage+` && rm -rf $d`)
	return err
}
