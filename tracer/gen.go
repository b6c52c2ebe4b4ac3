package tracer

// The generated *_bpfel.go and *_bpfel.o files are committed so that building needs
// no clang; `make generate` runs these (from a fixed directory: clang's output
// depends on the path it compiles from) and CI checks the result is unchanged.
//
// -target amd64,arm64: one object per architecture (*_x86_bpfel and
// *_arm64_bpfel, picked by the Go build's GOARCH); bpf2go defines
// __TARGET_ARCH_x86 or __TARGET_ARCH_arm64, and bpf/arch.h holds all that
// differs (registers, the compat check). Each -type names a C struct or enum
// whose Go mirror the tracer uses, so no constant or layout is copied by hand. The floor object is
// benchmark-only: -output-suffix _test keeps it out of the daemon binary.

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -strip llvm-strip-19 -target amd64,arm64 -type event_type -type rename_event rename ../bpf/rename.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -strip llvm-strip-19 -target amd64,arm64 -type event_type -type disposition -type watch_size -type signal_event -type exit_event signal ../bpf/signal.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -strip llvm-strip-19 -target amd64,arm64 -type event_type -type cgroup_event cgroup ../bpf/cgroup.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -strip llvm-strip-19 -target amd64,arm64 -type event_type -type copy_up_event copyup ../bpf/copyup.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -strip llvm-strip-19 -target amd64,arm64 -type hist_size -type overflow_reason -type syscall_tail_size -type hist -type hist_key -type syscall_key -type syscall_stat latency ../bpf/latency.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -strip llvm-strip-19 -target amd64,arm64 -type overflow_reason -type hist seccomp ../bpf/seccomp.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -strip llvm-strip-19 -target amd64,arm64 -type event_type -type sem_event sem ../bpf/sem.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -strip llvm-strip-19 -target amd64,arm64 -type event_type -type veth_event veth ../bpf/veth.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -strip llvm-strip-19 -target amd64,arm64 -output-suffix _test floor ../bpf/floor.bpf.c -- -I../bpf -I..
