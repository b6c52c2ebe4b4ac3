package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/observer-dev/observer/internal/residue"
)

// Residue grace and scan interval of the guest's observer
// (testdata/systemtest/observer.default).
const (
	guestGrace    = 5 * time.Second
	guestInterval = 2 * time.Second
)

// residueReport is `observer residue --json`, the CLI an operator runs.
func residueReport(ctx context.Context) (residue.Report, error) {
	var rep residue.Report
	out, err := Sh(ctx, "observer", "residue", "--json")
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		return rep, fmt.Errorf("observer residue --json: %w", err)
	}
	return rep, nil
}

// waitResidue polls the CLI until match finds an item, for up to d.
func waitResidue(ctx context.Context, d time.Duration, match func(residue.Item) bool) (residue.Item, error) {
	deadline := time.Now().Add(d)
	for {
		rep, err := residueReport(ctx)
		if err == nil {
			for _, it := range rep.Residue {
				if match(it) {
					return it, nil
				}
			}
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("not in the %d residue items", len(rep.Residue))
			}
			return residue.Item{}, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func isSem(id int) func(residue.Item) bool {
	return func(it residue.Item) bool {
		return it.Resource == "sem" && it.SemID != nil && int(*it.SemID) == id
	}
}

// restart: a semaphore array left by a process that exited is residue; the
// observer's unit is restarted, and the array is reported again within one
// grace period of the new daemon answering.
func restart(ctx context.Context, n *Node, t *T) error {
	out, err := Sh(ctx, "ipcmk", "-S", "1")
	if err != nil {
		return err
	}
	f := strings.Fields(out)
	id, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		return fmt.Errorf("ipcmk said %q", out)
	}
	defer Sh(context.Background(), "ipcrm", "-s", strconv.Itoa(id))
	t.Logf("ipcmk made semaphore array %d and exited", id)
	first, err := waitResidue(ctx, guestGrace+3*guestInterval+10*time.Second, isSem(id))
	if err != nil {
		return fmt.Errorf("semaphore %d never reported as residue: %w", id, err)
	}
	t.Logf("residue: %s (%s), remove with %q", first.Reason, first.Kind, first.Remove)
	if first.Remove == "" || first.Reason == "" {
		return fmt.Errorf("residue item without reason or removal command: %+v", first)
	}

	mark := n.Mark()
	restarted := time.Now()
	if _, err := Sh(ctx, "systemctl", "restart", "observer"); err != nil {
		return err
	}
	var up time.Time
	for deadline := time.Now().Add(2 * time.Minute); ; {
		var st json.RawMessage
		if n.Get(ctx, "/status", &st) == nil {
			up = time.Now()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the observer did not answer within 2m of its restart")
		}
		time.Sleep(100 * time.Millisecond)
	}
	again, err := waitResidue(ctx, 2*guestGrace, isSem(id))
	if err != nil {
		return fmt.Errorf("after the restart, semaphore %d not reported within %s: %w", id, 2*guestGrace, err)
	}
	reported := time.Since(up)
	if reported > guestGrace {
		return fmt.Errorf("after the restart, semaphore %d reported %s after the daemon answered, more than the grace period %s", id, reported.Round(time.Millisecond), guestGrace)
	}
	// The new daemon publishes its residue events at its first scan, which can
	// come before this /events client has reconnected: logged, not required.
	if ev, ok := n.WaitEvent(mark, 5*time.Second, func(e Event) bool {
		return e.Str("type") == "residue" && e.Str("resource") == "sem" && e.Num("semid") == float64(id)
	}); ok {
		t.Logf("residue event after the restart: %v", ev)
	} else {
		t.Logf("no residue event for semaphore %d on /events after the restart (published before this client reconnected)", id)
	}
	if _, err := n.WaitQuery(ctx, `observer_sem_residue_arrays{kind="other"}`, 30*time.Second, func(v float64) bool { return v >= 1 }); err != nil {
		return err
	}
	t.Fact("sem array (kind %s) reported by `observer residue` again after `systemctl restart observer`, within the %s grace; Prometheus observer_sem_residue_arrays >= 1", again.Kind, guestGrace)
	t.Measure("restart to HTTP up %s, then reported after %s", up.Sub(restarted).Round(time.Millisecond), reported.Round(time.Millisecond))
	return nil
}
