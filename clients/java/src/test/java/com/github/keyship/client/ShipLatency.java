package com.github.keyship.client;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * ShipLatency measures a warm Ship through KeyshipClient: after a warm-up,
 * {@code calls} Ships of a new job each (the server resolves and builds
 * every time, as for a new submission) with two tasks and the Mesos target,
 * and prints "calls N p50-us X p99-us Y". keyship's Go benchmark
 * BenchmarkJVMClientShip runs it.
 *
 * <p>Arguments: URL KEYSTORE(PKCS12) STOREPASS_FILE KEYPASS_FILE
 * TRUSTSTORE(PKCS12) TRUSTPASS_FILE SPEC_FILE CALLS
 */
public final class ShipLatency {
  private ShipLatency() {}

  public static void main(String[] a) throws Exception {
    KeyshipClient c =
        KeyshipClient.builder(URI.create(a[0]))
            .keyStore(Path.of(a[1]), "PKCS12", read(a[2]), read(a[3]))
            .trustStore(Path.of(a[4]), "PKCS12", read(a[5]))
            .build();
    byte[] spec = Files.readAllBytes(Path.of(a[6]));
    int calls = Integer.parseInt(a[7]);
    List<HostApi.Task> tasks =
        List.of(new HostApi.Task("driver", "driver", null), new HostApi.Task("executor-1", "executor", null));
    int warmup = 200;
    long[] lat = new long[calls];
    for (int i = -warmup; i < calls; i++) {
      HostApi.ShipRequest r =
          new HostApi.ShipRequest("jvm-" + i, spec, null, tasks, List.of(HostApi.TARGET_MESOS), null, 1L);
      long start = System.nanoTime();
      c.ship(r);
      if (i >= 0) {
        lat[i] = System.nanoTime() - start;
      }
    }
    Arrays.sort(lat);
    System.out.printf("calls %d p50-us %d p99-us %d%n", calls, lat[calls / 2] / 1000, lat[calls * 99 / 100] / 1000);
  }

  private static char[] read(String file) throws Exception {
    return new String(Files.readAllBytes(Path.of(file)), StandardCharsets.UTF_8).strip().toCharArray();
  }
}
