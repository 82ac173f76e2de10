package cli_test

import "io"

// newPipe returns a reader for the CLI and a function that types into it.
func newPipe() (io.Reader, func(string)) {
	r, w := io.Pipe()
	return r, func(s string) { go w.Write([]byte(s)) }
}
