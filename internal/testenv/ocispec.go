package testenv

// A minimal subset of the OCI runtime spec, written out by hand so the test
// helpers do not pull in the runtime-spec module for one JSON file. Field names
// and defaults follow `runc spec` and Docker's defaults.

import "runtime"

type ociSpec struct {
	Version  string     `json:"ociVersion"`
	Process  ociProcess `json:"process"`
	Root     ociRoot    `json:"root"`
	Hostname string     `json:"hostname"`
	Mounts   []ociMount `json:"mounts"`
	Linux    ociLinux   `json:"linux"`
}

type ociProcess struct {
	Terminal        bool            `json:"terminal"`
	User            ociUser         `json:"user"`
	Args            []string        `json:"args"`
	Env             []string        `json:"env"`
	Cwd             string          `json:"cwd"`
	Capabilities    ociCapabilities `json:"capabilities"`
	NoNewPrivileges bool            `json:"noNewPrivileges"`
}

type ociUser struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
}

type ociCapabilities struct {
	Bounding  []string `json:"bounding"`
	Effective []string `json:"effective"`
	Permitted []string `json:"permitted"`
}

type ociRoot struct {
	Path     string `json:"path"`
	Readonly bool   `json:"readonly"`
}

type ociMount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Options     []string `json:"options,omitempty"`
}

type ociLinux struct {
	CgroupsPath string         `json:"cgroupsPath"`
	Namespaces  []ociNamespace `json:"namespaces"`
	Seccomp     *ociSeccomp    `json:"seccomp,omitempty"`
}

type ociSeccomp struct {
	DefaultAction string              `json:"defaultAction"`
	Architectures []string            `json:"architectures"`
	Syscalls      []ociSeccompSyscall `json:"syscalls"`
}

type ociSeccompSyscall struct {
	Names    []string `json:"names"`
	Action   string   `json:"action"`
	ErrnoRet *uint    `json:"errnoRet,omitempty"`
}

// dockerLikeSeccomp allows every syscall but a few, as Docker's default
// profile does for the ones a container never needs: runc installs it as a
// seccomp filter, so the container's tasks run in SECCOMP_MODE_FILTER.
func dockerLikeSeccomp() *ociSeccomp {
	eperm := uint(1)
	return &ociSeccomp{
		DefaultAction: "SCMP_ACT_ALLOW",
		Architectures: []string{seccompArch[runtime.GOARCH]},
		Syscalls: []ociSeccompSyscall{{
			Names:    []string{"reboot", "kexec_load", "init_module", "delete_module", "swapon", "swapoff"},
			Action:   "SCMP_ACT_ERRNO",
			ErrnoRet: &eperm,
		}},
	}
}

// seccompArch is libseccomp's name of each architecture the tests run on:
// runc compiles the profile for the listed ones only.
var seccompArch = map[string]string{"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}

type ociNamespace struct {
	Type string `json:"type"`
}

// dockerCaps is Docker's default capability set, so processes in the test
// container have the privileges they would have under dockerd.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// newSpec builds the config.json for one container. The network namespace is
// deliberately shared with the host: the tests that need veth pairs create
// them explicitly, and a private netns would only add setup to every test.
func newSpec(id, rootfs string, args, env []string) ociSpec {
	return ociSpec{
		Version: "1.0.2",
		Process: ociProcess{
			Args: args,
			Env:  env,
			Cwd:  "/",
			Capabilities: ociCapabilities{
				Bounding: dockerCaps, Effective: dockerCaps, Permitted: dockerCaps,
			},
			NoNewPrivileges: true,
		},
		Root:     ociRoot{Path: rootfs},
		Hostname: id[:12],
		Mounts: []ociMount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
				Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
				Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
				Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue",
				Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs",
				Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: ociLinux{
			// Docker's cgroupfs driver shape, which the correlation code parses.
			CgroupsPath: "/docker/" + id,
			Namespaces: []ociNamespace{
				{Type: "pid"}, {Type: "mount"}, {Type: "ipc"}, {Type: "uts"},
			},
		},
	}
}
