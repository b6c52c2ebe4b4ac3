package main

import "flag"

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
