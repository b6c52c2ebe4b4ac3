package event

import "strconv"

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
