package main

import "github.com/observer-dev/observer/internal/residue"

func init() { subcommands["residue"] = residue.Main }
