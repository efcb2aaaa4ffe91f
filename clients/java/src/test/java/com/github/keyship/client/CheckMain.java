package com.github.keyship.client;

import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * CheckMain calls KeyshipClient.check and prints "ok" or one line per
 * problem ("problem FIELD | REF | REASON"), for keyship's Go test of the JVM
 * client.
 *
 * <p>Arguments: URL KEYSTORE(PKCS12) STOREPASS_FILE KEYPASS_FILE
 * TRUSTSTORE(PKCS12) TRUSTPASS_FILE SPEC_FILE DIALECT HOST...
 */
public final class CheckMain {
  private CheckMain() {}

  public static void main(String[] a) throws Exception {
    KeyshipClient c =
        KeyshipClient.builder(URI.create(a[0]))
            .keyStore(Path.of(a[1]), "PKCS12", read(a[2]), read(a[3]))
            .trustStore(Path.of(a[4]), "PKCS12", read(a[5]))
            .build();
    HostApi.CheckResponse r =
        c.check(new HostApi.CheckRequest(Files.readAllBytes(Path.of(a[6])), a[7], List.of(a).subList(8, a.length)));
    if (r.ok()) {
      System.out.println("ok");
    }
    for (HostApi.Problem p : r.problems()) {
      System.out.println("problem " + p.field() + " | " + p.ref() + " | " + p.reason());
    }
  }

  private static char[] read(String file) throws Exception {
    return new String(Files.readAllBytes(Path.of(file)), StandardCharsets.UTF_8).strip().toCharArray();
  }
}
