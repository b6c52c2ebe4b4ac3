package event

import (
	"fmt"
	"strconv"
)

// Event types of the signal sensor (watched daemons).
const (
	TypeSignal     = "signal"
	TypeDaemonExit = "daemon_exit"
)

func init() {
	Register(TypeSignal, func() Event { return new(Signal) })
	Register(TypeDaemonExit, func() Event { return new(DaemonExit) })
}

// Signal is a signal whose default action kills, generated for a watched daemon.
// The header describes the sender (the current task when the kernel generated it).
type Signal struct {
	Header
	Signal      string `json:"signal"`
	Signo       int32  `json:"signo"`
	SenderPID   uint32 `json:"sender_pid"`
	SenderComm  string `json:"sender_comm"`
	TargetPID   uint32 `json:"target_pid"`
	TargetComm  string `json:"target_comm"`
	Disposition string `json:"disposition"` // default (fatal), ignored, handled or unknown
	Result      string `json:"result"`      // delivered, ignored, already_pending, overflow_fail, lose_info
}

// Summary is the report's line.
func (e *Signal) Summary() string {
	return fmt.Sprintf("%s to %s (pid %d) from %s (pid %d); disposition %s, %s",
		e.Signal, e.TargetComm, e.TargetPID, e.SenderComm, e.SenderPID, e.Disposition, e.Result)
}

// DaemonExit is the exit of a watched daemon's process.
type DaemonExit struct {
	Header
	ExitCode   int32  `json:"exit_code"`        // exit status when it exited by itself
	Signal     string `json:"signal,omitempty"` // terminating signal, if any
	Signo      int32  `json:"signo,omitempty"`
	CoreDumped bool   `json:"core_dumped,omitempty"`
}

// Summary is the report's line.
func (e *DaemonExit) Summary() string {
	if e.Signal != "" {
		core := ""
		if e.CoreDumped {
			core = ", core dumped"
		}
		return fmt.Sprintf("%s (pid %d) killed by %s%s", e.Comm, e.PID, e.Signal, core)
	}
	return fmt.Sprintf("%s (pid %d) exited with code %d", e.Comm, e.PID, e.ExitCode)
}

var signalNames = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
	13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
	18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG",
	24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO",
	30: "SIGPWR", 31: "SIGSYS",
}

// SignalName returns the Linux (x86-64) name of a signal number: SIGPIPE, SIGRTMIN+3, ...
func SignalName(signo int32) string {
	switch {
	case signo > 0 && int(signo) < len(signalNames):
		return signalNames[signo]
	case signo == 32:
		return "SIGRTMIN-2" // glibc reserves 32 and 33 for itself; SIGRTMIN is 34
	case signo == 33:
		return "SIGRTMIN-1"
	case signo == 34:
		return "SIGRTMIN"
	case signo > 34 && signo <= 64:
		return "SIGRTMIN+" + strconv.Itoa(int(signo-34))
	}
	return "SIG" + strconv.Itoa(int(signo))
}
