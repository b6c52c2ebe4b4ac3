package container

import "strings"

// idLen is the length of a full container id (sha256 in lowercase hex).
const idLen = 64

// IDFromCgroupPath returns the full 64-hex container id found in a cgroup path,
// or "" for host cgroups. Components are scanned from the leaf up so the
// innermost container wins (docker-in-docker) and sub-cgroups of a container
// (e.g. "/docker/<id>/init.scope") resolve to it.
func IDFromCgroupPath(path string) string {
	for path != "" {
		i := strings.LastIndexByte(path, '/')
		comp := path[i+1:]
		if i < 0 {
			path = ""
		} else {
			path = path[:i]
		}
		if id := idFromComponent(comp); id != "" {
			return id
		}
	}
	return ""
}

// idFromComponent recognises one path component:
//
//	<id>                                  cgroupfs drivers (docker, kubepods)
//	<runtime>-<id>.scope                  systemd drivers (docker-, cri-containerd-, crio-, libpod-)
//	<slice>:<runtime>:<id>                containerd's systemd driver under containerd.service
//
// conmon scopes (crio-conmon-, libpod-conmon-) hold the host-side monitor,
// not the container, so they yield "".
func idFromComponent(c string) string {
	if isID(c) {
		return c
	}
	if i := strings.LastIndexByte(c, ':'); i >= 0 {
		id := c[i+1:]
		if !isID(id) {
			return ""
		}
		rest := c[:i]
		if j := strings.LastIndexByte(rest, ':'); j < 0 || strings.Contains(rest[j+1:], "conmon") {
			return ""
		}
		return id
	}
	stem, ok := strings.CutSuffix(c, ".scope")
	if !ok || len(stem) < idLen+2 {
		return ""
	}
	id := stem[len(stem)-idLen:]
	prefix := stem[:len(stem)-idLen]
	// A runtime name must precede the dash: a bare "-<id>.scope" is nobody's.
	if !isID(id) || len(prefix) < 2 || !strings.HasSuffix(prefix, "-") || strings.HasSuffix(prefix, "conmon-") {
		return ""
	}
	return id
}

// isID reports whether s is exactly 64 lowercase hex digits, the only form
// container runtimes use; uppercase hex is somebody else's name.
func isID(s string) bool {
	if len(s) != idLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ShortID returns the 12-char short form of a container id ("" stays "").
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
