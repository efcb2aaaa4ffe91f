package benchcmp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// coldRounds is how many rounds BenchmarkColdStart times per iteration
// ($KEYSHIP_COLD_ROUNDS, default 15): its figures are medians of them.
func coldRounds(b *testing.B) int {
	if v := os.Getenv("KEYSHIP_COLD_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("KEYSHIP_COLD_ROUNDS=%q: want a positive number", v)
		}
		return n
	}
	return 15
}

// helloWorld builds a Go "hello world" as make build builds keyship: the
// floor of any Go process on this machine.
func helloWorld(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	src := filepath.Join(dir, "hello.go")
	if err := os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello, world\") }\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "hello")
	if out, err := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, src).CombinedOutput(); err != nil {
		b.Fatalf("go build hello: %v\n%s", err, out)
	}
	return bin
}

// grpcFloor builds grpcfloor as make build builds keyship: the floor of a
// process that links gRPC and the plugin protocol.
func grpcFloor(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "grpcfloor")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags", "grpcnotrace", "-o", bin,
		"github.com/keyship/keyship/host/materialize/benchcmp/grpcfloor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build grpcfloor: %v\n%s", err, out)
	}
	return bin
}

// coldSet is one keyship installation's cold commands on the fixture: the
// keyship binary (its plugins beside it), a config through the pinned file
// plugin and one with the built-in file backend.
type coldSet struct {
	name                  string
	bin, plugin, builtin  string
	sandbox, spec, fixDir string
}

func newColdSet(b *testing.B, name, bin, dir, spec string) coldSet {
	b.Helper()
	sub := filepath.Join(dir, name)
	if err := os.MkdirAll(sub, 0o700); err != nil {
		b.Fatal(err)
	}
	plugin := pluginConfig(b, dir, bin)
	pinned := filepath.Join(sub, "plugin.yaml")
	if err := os.Rename(plugin, pinned); err != nil {
		b.Fatal(err)
	}
	builtin := filepath.Join(sub, "builtin.yaml")
	body := fmt.Sprintf("default_backend: file\nbackends:\n  file:\n    config:\n      root: %s\n", filepath.Join(dir, "secrets"))
	if err := os.WriteFile(builtin, []byte(body), 0o600); err != nil {
		b.Fatal(err)
	}
	return coldSet{name: name, bin: bin, plugin: pinned, builtin: builtin, sandbox: filepath.Join(sub, "sandbox"), spec: spec, fixDir: dir}
}

func (s coldSet) ship(b *testing.B, config string) cost {
	return timeRun(b, s.fixDir, s.bin, "ship", "--config", config, "--spec", s.spec, "--sandbox", s.sandbox, "--hosts", "node1.example.com")
}

// cost is what a whole process took: its wall time and the CPU time (user
// and system) of it and of the children it waited for (a plugin). On a
// loaded machine the CPU time is the steadier of the two.
type cost struct{ wall, cpu time.Duration }

func (c cost) add(d cost) cost { return cost{c.wall + d.wall, c.cpu + d.cpu} }

func measure(cmd *exec.Cmd) (cost, error) {
	t := time.Now()
	err := cmd.Run()
	c := cost{wall: time.Since(t)}
	if cmd.ProcessState != nil {
		c.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return c, err
}

// timeRun is run, timed.
func timeRun(b *testing.B, dir string, name string, args ...string) cost {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KEYSHIP_CONFIG=")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	c, err := measure(cmd)
	if err != nil {
		b.Fatalf("%s %s: %v\n%s", filepath.Base(name), args[0], err, out.String())
	}
	return c
}

// start runs bin with args as a whole process and returns what it took;
// the exit status does not count (a plugin started by hand exits 1 once
// its init has run: that start is what is timed).
func start(b *testing.B, bin string, args ...string) cost {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	c, err := measure(cmd)
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		b.Fatal(err)
	}
	return c
}

// BenchmarkColdStart times whole processes side by side on one machine,
// interleaved round by round (the builds taking turns to go first) so that
// a loaded machine weighs on all alike (issue 23, items 3 and 4):
//
//   - floor: a Go hello world built like keyship;
//   - grpc-floor: grpcfloor, a program that links gRPC and the plugin
//     protocol's messages and exits: the floor of keyship and of every
//     plugin, which must link them;
//   - version: keyship --version;
//   - plugin-<name>: each plugin binary beside keyship started alone (its
//     package init; it exits at the missing handshake cookie);
//   - ship-plugin: a cold keyship ship through the file plugin pinned by
//     sha256 (hashed at this start, as at every start);
//   - ship-builtin: the same ship with the built-in file backend;
//   - manual: openssl pkcs12 + keytool -importkeystore + keytool
//     -importcert, as BenchmarkKeyshipVsManual (skipped without them).
//
// It reports each one's median in ms and the ratios make bench prints:
// version-x-floor, grpc-floor-x-floor, plugin-file-x-floor, ship-x-builtin
// and manual-x-ship.
// With $KEYSHIP_BASELINE_BIN (another build's keyship, its plugins beside
// it) it times that build in the same rounds and reports its figures with a
// base- prefix: before and after, side by side.
//
//	go test -run '^$' -bench ColdStart -benchtime 1x ./host/materialize/benchcmp
func BenchmarkColdStart(b *testing.B) {
	rounds := coldRounds(b)
	floor, gfloor := helloWorld(b), grpcFloor(b)
	dir, spec := fixture(b)
	sets := []coldSet{newColdSet(b, "", keyshipBinary(b), dir, spec)}
	if base := os.Getenv("KEYSHIP_BASELINE_BIN"); base != "" {
		sets = append(sets, newColdSet(b, "base-", base, dir, spec))
	}
	var manualOnce func() cost
	if _, err := exec.LookPath("keytool"); err == nil {
		manualOnce = manual(b, dir)
	}
	// Warm the page cache, and check every command works.
	start(b, floor)
	start(b, gfloor)
	for _, s := range sets {
		s.ship(b, s.plugin)
		s.ship(b, s.builtin)
	}
	if manualOnce != nil {
		manualOnce()
	}

	wall, cpu := map[string][]time.Duration{}, map[string][]time.Duration{}
	add := func(name string, c cost) {
		wall[name] = append(wall[name], c.wall)
		cpu[name] = append(cpu[name], c.cpu)
	}
	b.ResetTimer()
	for b.Loop() {
		for i := range rounds {
			add("floor", start(b, floor))
			add("grpc-floor", start(b, gfloor))
			// The builds take turns going first: no build always follows
			// the manual pipeline's JVMs.
			for k := range sets {
				s := sets[(i+k)%len(sets)]
				add(s.name+"version", start(b, s.bin, "--version"))
				for _, p := range []string{"file", "vault", "dcos"} {
					pbin := filepath.Join(filepath.Dir(s.bin), "keyship-backend-"+p)
					if _, err := os.Stat(pbin); err == nil {
						add(s.name+"plugin-"+p, start(b, pbin))
					}
				}
				add(s.name+"ship-plugin", s.ship(b, s.plugin))
				add(s.name+"ship-builtin", s.ship(b, s.builtin))
			}
			if manualOnce != nil {
				add("manual", manualOnce())
			}
		}
	}
	b.StopTimer()
	for unit, samples := range map[string]map[string][]time.Duration{"ms": wall, "cpu-ms": cpu} {
		med := map[string]float64{}
		for name, d := range samples {
			slices.Sort(d)
			med[name] = float64(d[len(d)/2].Microseconds()) / 1000
			b.ReportMetric(med[name], name+"-"+unit)
		}
		x := "-x-"
		if unit == "cpu-ms" {
			x = "-cpu-x-"
		}
		b.ReportMetric(med["grpc-floor"]/med["floor"], "grpc-floor"+x+"floor")
		for _, s := range sets {
			p := s.name
			b.ReportMetric(med[p+"version"]/med["floor"], p+"version"+x+"floor")
			b.ReportMetric(med[p+"plugin-file"]/med["floor"], p+"plugin-file"+x+"floor")
			b.ReportMetric(med[p+"ship-plugin"]/med[p+"ship-builtin"], p+"ship"+x+"builtin")
			if manualOnce != nil {
				b.ReportMetric(med["manual"]/med[p+"ship-plugin"], p+"manual"+x+"ship")
			}
		}
	}
}

// manual returns the openssl + keytool pipeline of BenchmarkKeyshipVsManual
// on the fixture in dir.
func manual(b *testing.B, dir string) func() cost {
	openssl := require(b, "openssl")
	keytool := require(b, "keytool")
	return func() cost {
		for _, f := range []string{"node.p12", "keystore.jks", "truststore.jks"} {
			_ = os.Remove(filepath.Join(dir, f))
		}
		return timeRun(b, dir, openssl, "pkcs12", "-export", "-in", "cert.pem", "-inkey", "key.pem", "-certfile", "ca.pem",
			"-name", "node", "-passout", "pass:"+password, "-out", "node.p12").add(
			timeRun(b, dir, keytool, "-importkeystore", "-srckeystore", "node.p12", "-srcstoretype", "PKCS12", "-srcstorepass", password,
				"-destkeystore", "keystore.jks", "-deststoretype", "JKS", "-deststorepass", password, "-destkeypass", password, "-noprompt")).add(
			timeRun(b, dir, keytool, "-importcert", "-file", "ca.pem", "-alias", "ca", "-keystore", "truststore.jks",
				"-storetype", "JKS", "-storepass", password, "-noprompt"))
	}
}
