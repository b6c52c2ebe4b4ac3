package event

import "fmt"

// TypeRenameExdev is a rename that failed with EXDEV.
const TypeRenameExdev = "rename_exdev"

func init() { Register(TypeRenameExdev, func() Event { return new(RenameExdev) }) }

// RenameExdev is a rename(2), renameat(2) or renameat2(2) that failed with EXDEV,
// e.g. a directory rename on overlayfs without redirect_dir.
type RenameExdev struct {
	Header
	OldPath string `json:"old_path"`
	NewPath string `json:"new_path"`
	Flags   uint32 `json:"flags"`
}

// Summary is the report's line.
func (e *RenameExdev) Summary() string {
	return fmt.Sprintf("rename %s -> %s failed with EXDEV", e.OldPath, e.NewPath)
}
