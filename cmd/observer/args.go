package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// parseWithFile parses flags given before or after one positional FILE
// argument, and returns that argument ("" if none; extra ones are an error).
func parseWithFile(fs *flag.FlagSet, args []string) (string, []string, error) {
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	var files []string
	for fs.NArg() > 0 {
		files = append(files, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return "", nil, err
		}
	}
	if len(files) == 0 {
		return "", nil, nil
	}
	return files[0], files[1:], nil
}

// parseCommand parses a subcommand's flags (fs named "observer NAME", its
// output discarded). done means the command ends here with code: --help
// printed usage and the flags on stdout (exit 0), or a bad flag or a stray
// argument got one line on stderr (exit 2).
func parseCommand(fs *flag.FlagSet, args []string, usage string, stdout, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, usage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return exitOK, true
		}
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, true
	}
	return exitOK, false
}
