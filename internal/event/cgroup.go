package event

// Event types of cgroup directories, for container correlation.
const (
	TypeCgroupMkdir = "cgroup_mkdir"
	TypeCgroupRmdir = "cgroup_rmdir"
)

func init() {
	Register(TypeCgroupMkdir, func() Event { return new(CgroupChange) })
	Register(TypeCgroupRmdir, func() Event { return new(CgroupChange) })
}

// CgroupChange is a cgroup v2 directory created or removed. It feeds container
// correlation and is not published to users.
type CgroupChange struct {
	Header
	ID   uint64 `json:"id"`
	Path string `json:"path"`
}
