package main

import "github.com/observer-dev/observer/internal/latency"

func init() {
	subcommands["seccomp-report"] = latency.RunReport
}
