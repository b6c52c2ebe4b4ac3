package tracer

// The generated *_bpfel.go and *_bpfel.o files are committed so that building needs
// no clang; `make generate` runs these (from a fixed directory: clang's output
// depends on the path it compiles from) and CI checks the result is unchanged.
// kprobe programs read x86-64 registers (__TARGET_ARCH_x86): amd64 is the only
// supported architecture today.

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -strip llvm-strip-19 -target bpfel -type rename_event rename ../bpf/rename.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -strip llvm-strip-19 -target bpfel -type signal_event -type exit_event signal ../bpf/signal.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -strip llvm-strip-19 -target bpfel -type cgroup_event cgroup ../bpf/cgroup.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -strip llvm-strip-19 -target bpfel -type copy_up_event copyup ../bpf/copyup.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -strip llvm-strip-19 -target bpfel -type hist -type hist_key -type syscall_key -type syscall_stat latency ../bpf/latency.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -strip llvm-strip-19 -target bpfel -type hist seccomp ../bpf/seccomp.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -strip llvm-strip-19 -target bpfel floor ../bpf/floor.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -strip llvm-strip-19 -target bpfel -type sem_event sem ../bpf/sem.bpf.c -- -I../bpf -I..
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror -D__TARGET_ARCH_x86" -strip llvm-strip-19 -target bpfel -type veth_event veth ../bpf/veth.bpf.c -- -I../bpf -I..
