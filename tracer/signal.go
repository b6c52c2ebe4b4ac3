package tracer

import (
	"fmt"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/observer-dev/observer/internal/event"
)

// The signal sensor: fatal signals sent to watched daemons and their exits
// (bpf/signal.bpf.c).
var signalSensor = sensorDef{
	name:      SensorSignal,
	load:      loadSignal,
	modes:     []Mode{ModeTPBTF, ModeTracepoint},
	configure: configureSignal,
	decode:    decodeSignal,
	ringBytes: 256 << 10,
}

// maxWatch is MAX_WATCH in bpf/signal.bpf.c: the watch list's capacity.
const maxWatch = int(signalWatchSizeMAX_WATCH)

// DefaultWatchComms are the container daemons whose fatal signals and exits matter.
var DefaultWatchComms = []string{"dockerd", "containerd", "containerd-shim*", "runc", "docker-proxy"}

// watchPatterns turns comm names into the signal sensor's patterns. The kernel
// truncates comm to 15 bytes, so longer names could never match.
func watchPatterns(comms []string) ([maxWatch]signalCommPattern, error) {
	var out [maxWatch]signalCommPattern
	if len(comms) > maxWatch {
		return out, fmt.Errorf("watch list has %d names, at most %d are supported", len(comms), maxWatch)
	}
	for i, c := range comms {
		prefix := strings.HasSuffix(c, "*")
		c = strings.TrimSuffix(c, "*")
		if c == "" || strings.Contains(c, "*") {
			return out, fmt.Errorf("watch name %q: want a comm, optionally ending in *", comms[i])
		}
		if len(c) > 15 {
			return out, fmt.Errorf("watch name %q is longer than the kernel's 15-byte comm", c)
		}
		for j := 0; j < len(c); j++ {
			out[i].Comm[j] = int8(c[j])
		}
		out[i].Len = uint32(len(c))
		if prefix {
			out[i].Prefix = 1
		}
	}
	return out, nil
}

func configureSignal(spec *ebpf.CollectionSpec, opts *Options) error {
	comms := opts.WatchComms
	if comms == nil {
		comms = DefaultWatchComms
	}
	patterns, err := watchPatterns(comms)
	if err != nil {
		return err
	}
	var vars signalVariableSpecs
	if err := spec.Assign(&vars); err != nil {
		return fmt.Errorf("signal object: %w", err)
	}
	if err := vars.Watch.Set(patterns); err != nil {
		return fmt.Errorf("set watch list: %w", err)
	}
	if err := vars.WatchCount.Set(uint32(len(comms))); err != nil {
		return fmt.Errorf("set watch count: %w", err)
	}
	return nil
}

// Names of enum disposition (bpf/signal.bpf.c), as the event reports them.
var dispositions = map[signalDisposition]string{
	signalDispositionDISP_UNKNOWN: "unknown",
	signalDispositionDISP_DEFAULT: "default",
	signalDispositionDISP_IGNORED: "ignored",
	signalDispositionDISP_HANDLED: "handled",
}

// Values of enum trace_signal_result (include/trace/events/signal.h).
var signalResults = [...]string{"delivered", "ignored", "already_pending", "overflow_fail", "lose_info"}

func dispositionName(d signalDisposition) string {
	if n, ok := dispositions[d]; ok {
		return n
	}
	return fmt.Sprintf("unknown(%d)", d)
}

func decodeSignal(raw []byte) (event.Event, error) {
	typ, err := recordType(raw)
	if err != nil {
		return nil, err
	}
	switch signalEventType(typ) {
	case signalEventTypeEVENT_SIGNAL:
		r, err := view[signalSignalEvent](raw)
		if err != nil {
			return nil, err
		}
		h := &r.Hdr
		targetPID := r.TargetTgid
		if targetPID == 0 { // the classic tracepoint knows only the thread id
			targetPID = r.TargetPid
		}
		comm := cString(h.Comm[:])
		return &event.Signal{
			Header:      header(event.TypeSignal, h),
			Signal:      event.SignalName(r.Signo),
			Signo:       r.Signo,
			SenderPID:   h.Pid,
			SenderComm:  comm,
			TargetPID:   targetPID,
			TargetComm:  cString(r.TargetComm[:]),
			Disposition: dispositionName(signalDisposition(r.Disposition)),
			Result:      name(signalResults[:], int(r.Result)),
		}, nil
	case signalEventTypeEVENT_DAEMON_EXIT:
		r, err := view[signalExitEvent](raw)
		if err != nil {
			return nil, err
		}
		h := &r.Hdr
		ev := &event.DaemonExit{
			Header: header(event.TypeDaemonExit, h),
		}
		// exit_code holds a wait status: signal in the low 7 bits, core flag 0x80, code above.
		if sig := r.ExitCode & 0x7f; sig != 0 {
			ev.Signo = sig
			ev.Signal = event.SignalName(sig)
			ev.CoreDumped = r.ExitCode&0x80 != 0
		} else {
			ev.ExitCode = (r.ExitCode >> 8) & 0xff
		}
		return ev, nil
	}
	return nil, fmt.Errorf("signal sensor: unexpected record type %d", typ)
}
