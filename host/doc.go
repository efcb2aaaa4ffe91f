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
//   - shipper.Prepare, the one ship pipeline, hands the Bundle to the
//     targets (sandbox, Mesos, fetch, consumer settings).
//
// Quickstart:
//
//	cfg, err := config.Load("keyship.yaml")
//	h := host.New(cfg, host.WithBuiltin("file", file.New))
//	defer h.Close()
//	req, err := spec.ReadRequest(spec.Document{JobID: "job-1", Data: jobJSON})
//	bundle, err := h.Build(ctx, req.Spec, materialize.Options{})
//	defer bundle.Zero()
//	// bundle.Files are checked stores; shipper.Prepare does this and more
package host
