package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// deadline is a --timeout flag: a duration that must be positive, since a
// zero or negative deadline would fail every call at once.
type deadline struct{ d *time.Duration }

// deadlineVar defines a --timeout-style flag on fs.
func deadlineVar(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(deadline{p}, name, usage)
}

func (d deadline) String() string {
	if d.d == nil {
		return ""
	}
	return d.d.String()
}

func (d deadline) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or 2m")
	}
	if v <= 0 {
		return fmt.Errorf("%s: want a positive duration such as 30s or 2m", s)
	}
	*d.d = v
	return nil
}

func (deadline) Type() string { return "duration" }
