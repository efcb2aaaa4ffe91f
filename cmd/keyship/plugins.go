package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newPluginsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "plugins",
		Short: "List the configured backends: name, version, status, plugin path and sha256",
		Long: `plugins starts every backend the config names and prints its name, version,
status, plugin binary and the binary's sha256 (the value to pin in the
config's sha256 field). Built-in backends show "built-in". A backend that
fails to load has status "failed", its error on a line under the table, and
makes the command exit non-zero.`,
		Example: `  keyship plugins --config keyship.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			h, ctx, done, err := g.startHost(context.Background(), 30*time.Second)
			if err != nil {
				return err
			}
			defer done()
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSTATUS\tPATH\tSHA256")
			var failures []string
			for _, d := range h.Loader().Describe(ctx) {
				version, status, sum := dash(d.Version), "ok", dash(d.SHA256)
				if d.Err != nil {
					status = "failed"
					msg := d.Err.Error()
					if !strings.HasPrefix(msg, "backend "+d.Name+":") {
						msg = "backend " + d.Name + ": " + msg
					}
					failures = append(failures, msg)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Name, version, status, d.Path, sum)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(failures) > 0 {
				fmt.Fprintln(g.stdout)
				for _, f := range failures {
					fmt.Fprintln(g.stdout, f)
				}
				return fmt.Errorf("%d backend(s) failed to load", len(failures))
			}
			return nil
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
