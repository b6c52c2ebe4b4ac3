package deploy

// RunFlags are the docker run flags the README gives for the image: the
// capabilities (SYS_ADMIN for the BPF programs, to mount tracefs and for
// Docker's seccomp profile to allow bpf(): Docker 20.10 knows no CAP_BPF or
// CAP_PERFMON; newer engines may add those instead; DAC_READ_SEARCH for
// cgroup-id lookups by handle, SYS_PTRACE for other processes' /proc
// entries), the host's PID, IPC and network
// namespaces (processes, semaphores, veths), its cgroup tree and BTF, and the
// Docker socket for container names. runDir is mounted as /run/observer, the
// control socket's directory.
func RunFlags(dockerSocket, runDir string) []string {
	return []string{
		"--cap-drop=ALL", "--cap-add=SYS_ADMIN", "--cap-add=DAC_READ_SEARCH", "--cap-add=SYS_PTRACE",
		"--pid=host", "--ipc=host", "--network=host", "--cgroupns=host",
		"-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
		"-v", "/sys/kernel/btf:/sys/kernel/btf:ro",
		"-v", dockerSocket + ":/var/run/docker.sock",
		"-v", runDir + ":/run/observer",
	}
}
