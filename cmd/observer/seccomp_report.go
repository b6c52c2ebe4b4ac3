package main

import "github.com/observer-dev/observer/internal/latency"

func init() {
	register("seccomp-report", "what seccomp costs each container: syscall time by seccomp mode, filter share", latency.RunReport)
}
