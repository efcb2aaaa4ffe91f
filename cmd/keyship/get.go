package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyship/keyship/host/spec"
	"github.com/keyship/keyship/plugin"
)

func newGetCmd(g *globals) *cobra.Command {
	var reveal bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "get REF",
		Short: "Read one secret ref and print its version and metadata (the bytes only with --reveal)",
		Long: `get reads one secret ref through its backend, [backend:]path[#field][@version],
and prints its size, version and metadata. The secret's bytes are written to
stdout only with --reveal, and then nothing else is printed.`,
		Example: `  keyship get /spark/keystore
  keyship get vault:secret/spark/tls#keystore@3
  keyship get --reveal /spark/keystore > keystore.jks`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := spec.ParseRef(args[0])
			if err != nil {
				return usageError{err}
			}
			h, ctx, done, err := g.startHost(context.Background(), timeout)
			if err != nil {
				return err
			}
			defer done()
			b, err := h.Loader().Backend(ctx, ref.Backend)
			if err != nil {
				return err
			}
			res, err := b.Get(ctx, []plugin.Ref{{Path: ref.Path, Field: ref.Field, Version: ref.Version}})
			if err != nil {
				return fmt.Errorf("%s: %w", ref, err)
			}
			if res[0].Err != nil {
				return fmt.Errorf("%s: %w", ref, res[0].Err)
			}
			sec := res[0].Secret
			defer clear(sec.Data)
			if reveal {
				_, err := g.stdout.Write(sec.Data)
				return err
			}
			fmt.Fprintf(g.stdout, "ref:     %s\nbackend: %s\nsize:    %d bytes\nversion: %s\n", ref, backendName(ref, h.Loader().DefaultBackend()), len(sec.Data), sec.Version)
			keys := make([]string, 0, len(sec.Metadata))
			for k := range sec.Metadata {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(g.stdout, "meta:    %s=%s\n", k, sec.Metadata[k])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&reveal, "reveal", false, "write the secret's bytes to stdout (and nothing else)")
	deadlineVar(cmd.Flags(), &timeout, "timeout", 30*time.Second, "deadline for the read (positive)")
	return cmd
}

func backendName(r spec.Ref, def string) string {
	if r.Backend != "" {
		return r.Backend
	}
	return def + " (default)"
}
