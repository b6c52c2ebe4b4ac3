//go:build !linux

package container

import "errors"

// handleResolver is Linux-only; elsewhere misses simply stay misses.
type handleResolver struct{}

var errNoHandles = errors.New("open_by_handle_at is Linux-only")

func openHandleResolver(string) (*handleResolver, error)    { return nil, errNoHandles }
func (h *handleResolver) close() error                      { return nil }
func (h *handleResolver) path(uint64) (string, bool, error) { return "", false, errNoHandles }
func handleGone(error) bool                                 { return false }
func handleUnsupported(err error) bool                      { return errors.Is(err, errNoHandles) }

func isCgroup2(string) (bool, error) { return false, errNoHandles }
