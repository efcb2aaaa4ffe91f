package launch

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// KillAll kills every plugin process this host process has started and not
// yet reaped (each one's whole process group) and removes their sockets. It
// is safe to call at any time and more than once, from any goroutine; the
// Subprocesses it killed fail their next call with plugin.ErrPluginExited
// (or restart, if not closed). It is for a host that is about to exit
// without running its deferred Close calls: HandleSignals uses it.
func KillAll() { killAll(false) }

// killAll is KillAll; final also refuses every later plugin start, for a
// host about to die: a start that had gone past its check would otherwise
// create a socket after the cleanup.
func killAll(final bool) {
	live.Lock()
	live.dying = live.dying || final
	procs := make([]*process, 0, len(live.procs))
	for p := range live.procs {
		procs = append(procs, p)
	}
	live.Unlock()
	for _, p := range procs {
		p.kill()
		p.removeSocket()
	}
}

// HandleSignals makes the signals sigs (default SIGINT and SIGTERM) kill
// every plugin process and remove its socket (KillAll) before the host
// process dies of the signal as it would have without the handler (the
// signal is raised again with its default action, so the exit status says
// which signal it was). A CLI command installs it for its run; stop removes
// the handler:
//
//	defer launch.HandleSignals()()
//
// A plugin also dies with its host without this (on Linux it is started
// with a parent-death signal, SIGKILL), but only the handler removes a
// socket of a plugin that was still starting. A long-running server that
// shuts down gracefully on these signals closes its Loader instead.
func HandleSignals(sigs ...os.Signal) (stop func()) {
	if len(sigs) == 0 {
		sigs = []os.Signal{os.Interrupt, syscall.SIGTERM}
	}
	ch := make(chan os.Signal, 1)
	quit := make(chan struct{})
	signal.Notify(ch, sigs...)
	go func() {
		select {
		case sig := <-ch:
			killAll(true)
			// A start between go-plugin's socket directory and register
			// finds the host dying there and removes its directory: wait
			// for that (under load the window took longer than 200 ms).
			awaitStarts(5 * time.Second)
			signal.Reset(sigs...)
			if s, ok := sig.(syscall.Signal); ok {
				_ = syscall.Kill(os.Getpid(), s)
			}
		case <-quit:
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}
