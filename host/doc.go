// Package host is keyship's host side: it takes a job's TLS request, resolves
// every secret ref through the backends (built in or plugin subprocesses),
// and builds checked stores ready for a shipper.
//
// The pieces, in the order data flows through them:
//
//   - host/spec parses a request (DC/OS security.tls JSON) into a Spec;
//   - host/config and host/loader set up the backends the config names;
//   - host/resolve reads every distinct ref once;
//   - host/materialize checks the stores and builds the Bundle;
//   - shipper/... writes the Bundle where the job will read it.
//
// Quickstart:
//
//	cfg, err := config.Load("keyship.yaml")
//	h := host.New(cfg, host.WithBuiltin("file", file.New))
//	defer h.Close()
//	s, err := spec.ParseDCOS(jobJSON)
//	bundle, err := h.Build(ctx, s, materialize.Options{})
//	defer bundle.Zero()
//	// hand bundle.Files to shipper/sandbox.Write
package host
