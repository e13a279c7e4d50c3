package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Error is one problem found in a configuration file. Parse returns all of
// them at once, joined with errors.Join: its Error() prints one per line,
// and errors.As finds the first *Error.
type Error struct {
	File string
	// Line is where the problem is, or 0 when it relates several tables
	// (a route and the interfaces, two interfaces); Msg names them then.
	Line int
	Msg  string
}

// Error formats as FILE:LINE: MESSAGE, or FILE: MESSAGE without a line,
// the form compilers use, so editors can jump to it.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// errorList collects the errors of one Parse call.
type errorList struct {
	file string
	errs []*Error
}

func (l *errorList) errorf(line int, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// err returns the errors in file order, those without a line last, or nil.
func (l *errorList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	order := func(e *Error) int {
		if e.Line == 0 {
			return math.MaxInt
		}
		return e.Line
	}
	slices.SortStableFunc(l.errs, func(a, b *Error) int { return cmp.Compare(order(a), order(b)) })
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}
