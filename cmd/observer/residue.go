package main

import "github.com/observer-dev/observer/internal/residue"

func init() {
	register("residue", "list leaked semaphores and veths, with their creators; --clean removes them", residue.Main)
}
