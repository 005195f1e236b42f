package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kithnet/kith/cmd/kith/internal/roomsecret"
	"golang.org/x/term"
)

// roomSecret returns the secret of a private room, or nil for an open one:
// read from file ("-": stdin) when one is named, else, with private set,
// typed twice at a prompt without echo. It never puts the secret in an
// error or on the terminal.
func roomSecret(file string, private bool, room string, stdin io.Reader, stderr io.Writer) ([]byte, error) {
	switch {
	case file != "":
		return secretFromFile(file, stdin)
	case private:
		return promptSecret(room, stdin, stderr)
	}
	return nil, nil
}

// secretFromFile reads a secret from path ("-": stdin) as every kith
// command and kith chat do; a bad one is a usage error.
func secretFromFile(path string, stdin io.Reader) ([]byte, error) {
	b, err := roomsecret.ReadFile(path, stdin)
	if err != nil {
		return nil, usageError{err}
	}
	return b, nil
}

// errNoTerminal: --private cannot prompt.
var errNoTerminal = errors.New("--private prompts for the secret, and standard input is not a terminal: " +
	"use --secret-file FILE (or --secret-file - to read it from standard input)")

// promptSecret asks for the secret twice on the terminal, without echo.
func promptSecret(room string, stdin io.Reader, stderr io.Writer) ([]byte, error) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, usageError{errNoTerminal}
	}
	fd := int(f.Fd())
	fmt.Fprintf(stderr, "Secret for room %s: ", room)
	first, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	if err != nil {
		return nil, fmt.Errorf("read the secret: %w", err)
	}
	if first, err = roomsecret.Check(first, "the prompt"); err != nil {
		return nil, usageError{err}
	}
	fmt.Fprint(stderr, "Once more: ")
	again, err := term.ReadPassword(fd)
	fmt.Fprintln(stderr)
	defer clear(again)
	if err != nil {
		clear(first)
		return nil, fmt.Errorf("read the secret: %w", err)
	}
	if !bytes.Equal(first, again) {
		clear(first)
		return nil, usageError{errors.New("the two secrets differ; nothing was joined")}
	}
	return first, nil
}
