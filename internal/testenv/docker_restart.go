package testenv

// RestartErr is Restart that returns the error, for tests that kill dockerd
// at random moments and may need a second try while orphaned shims settle.
func (d *Dockerd) RestartErr(extraArgs ...string) error {
	return d.start(extraArgs...)
}
