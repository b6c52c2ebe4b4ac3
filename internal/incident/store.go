package incident

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Store is the capture directory: files created 0600 in a directory created
// 0700 (captures show what ran on the host), rotated by count and total size.
// One daemon owns it at a time (a lock file): two daemons sharing it would
// rotate each other's captures away, one while the other was writing it, and
// each would apply its own bounds to the other's files. A second daemon is
// refused (rather than given a subdirectory) because the bounds are the
// operator's disk budget for the directory they named: splitting it silently
// would double it.
type Store struct {
	dir      string
	keep     int
	maxBytes int64
	lock     *os.File // flock'd while the store is open

	mu     sync.Mutex
	active map[string]bool // captures being written: never rotated away
}

const filePrefix, fileSuffix = "capture-", ".jsonl.gz"

// LockFile is the file in the capture directory that one daemon holds locked.
const LockFile = ".observer.lock"

// ErrInUse is wrapped by OpenStore's error when another observer holds the directory.
var ErrInUse = errors.New("capture directory in use by another observer")

// OpenStore creates dir (0700) if needed, tightens it to 0700 if it exists
// with wider permissions, and locks it; Close releases it.
func OpenStore(dir string, keep int, maxBytes int64) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("capture directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("capture directory %s: not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("capture directory %s is %v and cannot be made 0700: %w", dir, fi.Mode().Perm(), err)
		}
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, keep: keep, maxBytes: maxBytes, lock: lock, active: map[string]bool{}}, nil
}

// lockDir takes the directory's lock (flock: released when the process dies,
// however) and writes the holder's pid into it, for the refusal message.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("capture directory lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w: %s (pid %s holds %s); give each daemon its own --capture-dir", ErrInUse, dir, pid, LockFile)
		}
		return nil, fmt.Errorf("capture directory lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// Close releases the directory's lock.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Dir is the capture directory.
func (s *Store) Dir() string { return s.dir }

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// Create makes room for one more capture and opens its file (0600, never an
// existing one). Call Done with the file's path when it is written.
func (s *Store) Create(reason string, t time.Time) (*os.File, error) {
	slug := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(reason), "-"), "-")
	if len(slug) > 40 {
		slug = strings.TrimRight(slug[:40], "-")
	}
	base := filePrefix + t.UTC().Format("20060102T150405.000Z")
	if slug != "" {
		base += "-" + slug
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate(1)
	for i := 0; ; i++ {
		name := base + fileSuffix
		if i > 0 {
			name = fmt.Sprintf("%s-%d%s", base, i, fileSuffix)
		}
		path := filepath.Join(s.dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && i < 100 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create capture: %w", err)
		}
		s.active[path] = true
		return f, nil
	}
}

// Done marks a capture finished and applies the bounds again.
func (s *Store) Done(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.active, path)
	s.rotate(0)
}

// File is one stored capture.
type File struct {
	Path    string    `json:"path"`
	Bytes   int64     `json:"bytes"`
	ModTime time.Time `json:"mod_time"`
}

// List returns the captures, oldest first (names sort by time).
func (s *Store) List() ([]File, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list captures: %w", err)
	}
	var out []File
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, filePrefix) || !strings.HasSuffix(n, fileSuffix) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, File{Path: filepath.Join(s.dir, n), Bytes: fi.Size(), ModTime: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// rotate removes the oldest finished captures until reserve more fit within
// the count bound and the total is within the size bound. Called with mu held.
func (s *Store) rotate(reserve int) {
	files, err := s.List()
	if err != nil {
		return
	}
	var total int64
	for _, f := range files {
		total += f.Bytes
	}
	count := len(files)
	for _, f := range files {
		if count+reserve <= s.keep && total <= s.maxBytes {
			return
		}
		if s.active[f.Path] {
			continue
		}
		if os.Remove(f.Path) == nil {
			count--
			total -= f.Bytes
		}
	}
}
