package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newPluginsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "plugins",
		Short: "List the configured backends: name, version, plugin path and sha256",
		Long: `plugins starts every backend the config names and prints its name, version,
plugin binary and the binary's sha256 (the value to pin in the config's
sha256 field). Built-in backends show "built-in". A backend that fails to
load is listed with its error and makes the command exit non-zero.`,
		Example: `  keyship plugins --config keyship.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			h, ctx, done, err := g.startHost(context.Background(), 30*time.Second)
			if err != nil {
				return err
			}
			defer done()
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tPATH\tSHA256")
			failed := 0
			for _, d := range h.Loader().Describe(ctx) {
				version := d.Version
				if d.Err != nil {
					version, failed = "error: "+d.Err.Error(), failed+1
				}
				sum := d.SHA256
				if sum == "" {
					sum = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, version, d.Path, sum)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if failed > 0 {
				return fmt.Errorf("%d backend(s) failed to load", failed)
			}
			return nil
		},
	}
}
