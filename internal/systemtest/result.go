package systemtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Status is a scenario's verdict on one kernel.
type Status string

const (
	Pass Status = "pass"
	Fail Status = "fail"
	// Unavailable: the scenario could not run on this kernel (a sensor it
	// needs did not attach); never counted as passed.
	Unavailable Status = "unavailable"
)

// Result is one scenario on one kernel, printed by the guest as an
// OBSERVER-RESULT line.
type Result struct {
	Kernel   string `json:"kernel"`
	Release  string `json:"release,omitempty"`
	Scenario string `json:"scenario"`
	Status   Status `json:"status"`
	// Reason says why it failed or could not run ("copyup: <sensor's reason>").
	Reason string `json:"reason,omitempty"`
	// Facts are what the run established that another run establishes too
	// (bytes copied, the trigger, counts); the README's checked table shows them.
	Facts string `json:"facts,omitempty"`
	// Measured are the run's figures (durations, shares), which vary by run.
	Measured string  `json:"measured,omitempty"`
	Seconds  float64 `json:"seconds"`
	// Log is what the scenario did, step by step, for the console log.
	Log []string `json:"log,omitempty"`
}

// Progress and result markers on the guest console.
const (
	ProgressPrefix = "OBSERVER-SYSTEMTEST "
	ResultPrefix   = "OBSERVER-RESULT "
	BootedMarker   = "OBSERVER-VMTEST BOOTED"
	DoneMarker     = "OBSERVER-VMTEST DONE"
)

// Scenarios in the order the guest runs them and the table lists them.
var Scenarios = []struct{ Name, Title string }{
	{"copy_up", "1 copy-up of a 64 MiB image file"},
	{"rename_exdev", "2 EXDEV `mv` of an image directory"},
	{"seccomp", "3 seccomp default vs unconfined"},
	{"sigpipe", "6 SIGPIPE: journald restart, a daemon's reader dies"},
	{"restart", "7 observer restarted while residue exists"},
	{"veth_residue", "4 veth residue from a SIGKILLed dockerd"},
	{"sem_residue", "5 udev-cookie semaphores from a SIGKILLed dockerd on devicemapper"},
}

// ReadResults reads a results.jsonl file written by the harness.
func ReadResults(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// WriteResults stores results one per line.
func WriteResults(path string, rs []Result) error {
	var b strings.Builder
	for _, r := range rs {
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
