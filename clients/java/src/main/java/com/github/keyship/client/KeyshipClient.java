package com.github.keyship.client;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * KeyshipClient calls a {@code keyship serve} host API over HTTPS with
 * mutual TLS, in the Connect protocol: each call is one POST of JSON to
 * {@code /keyship.host.v1.ShipperService/<Method>}. It needs only the JDK
 * (java.net.http) and Jackson databind, which Spark and Flink already ship.
 *
 * <pre>{@code
 * KeyshipClient client = KeyshipClient.builder(URI.create("https://keyship.example.com:7443"))
 *     .keyStore(Path.of("dispatcher.p12"), "PKCS12", storePassword, keyPassword)
 *     .trustStore(Path.of("truststore.p12"), "PKCS12", trustPassword)
 *     .build();
 * HostApi.ShipResponse r = client.ship(new HostApi.ShipRequest("job-1", sparkConf,
 *     HostApi.DIALECT_SPARK, tasks, List.of(HostApi.TARGET_MESOS), null, null));
 * }</pre>
 *
 * A client is immutable and safe for concurrent use; reuse one for every
 * call (it keeps its connections alive).
 */
public final class KeyshipClient {
  /** The path prefix of the host API's methods. */
  public static final String SERVICE = "/keyship.host.v1.ShipperService/";

  private static final ObjectMapper JSON =
      JsonMapper.builder()
          .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
          .serializationInclusion(JsonInclude.Include.NON_NULL)
          .build();

  private final URI base;
  private final HttpClient http;
  private final Duration timeout;

  private KeyshipClient(URI base, HttpClient http, Duration timeout) {
    this.base = base;
    this.http = http;
    this.timeout = timeout;
  }

  /** Starts a client of the keyship serve at {@code base}, e.g. https://host:7443. */
  public static Builder builder(URI base) {
    return new Builder(base);
  }

  /**
   * Ship builds the job's stores once (every distinct ref read once,
   * whatever the number of tasks) and returns what each task needs.
   *
   * @throws KeyshipException the server's error: code and message
   * @throws IOException the server could not be reached, or refused the
   *     client's certificate: a javax.net.ssl.SSLHandshakeException, or
   *     (TLS 1.3, when the server's close reset the connection before its
   *     alert was read) an IOException for a connection closed with no
   *     response; the server's log at debug level names the refusal
   */
  public HostApi.ShipResponse ship(HostApi.ShipRequest request)
      throws KeyshipException, IOException, InterruptedException {
    return call("Ship", request, HostApi.ShipResponse.class);
  }

  /** Check runs the pre-flight checks only: nothing is kept or served. */
  public HostApi.CheckResponse check(HostApi.CheckRequest request)
      throws KeyshipException, IOException, InterruptedException {
    return call("Check", request, HostApi.CheckResponse.class);
  }

  private <T> T call(String method, Object request, Class<T> type)
      throws KeyshipException, IOException, InterruptedException {
    HttpRequest req =
        HttpRequest.newBuilder(base.resolve(SERVICE + method))
            .timeout(timeout)
            .header("Content-Type", "application/json")
            .header("Connect-Protocol-Version", "1")
            .header("Connect-Timeout-Ms", Long.toString(timeout.toMillis()))
            .POST(HttpRequest.BodyPublishers.ofByteArray(JSON.writeValueAsBytes(request)))
            .build();
    HttpResponse<InputStream> resp = http.send(req, HttpResponse.BodyHandlers.ofInputStream());
    try (InputStream body = resp.body()) {
      if (resp.statusCode() == 200) {
        return JSON.readValue(body, type);
      }
      // A Connect error: {"code": "invalid_argument", "message": "..."}.
      String code = "unknown";
      String message = "HTTP " + resp.statusCode();
      try {
        JsonNode err = JSON.readTree(body);
        if (err != null && err.hasNonNull("code")) {
          code = err.get("code").asText();
          message = err.path("message").asText("");
        }
      } catch (IOException notJson) {
        // keep the HTTP status as the message
      }
      throw new KeyshipException(code, message, resp.statusCode());
    }
  }

  /** Builder configures a KeyshipClient's mutual TLS and timeout. */
  public static final class Builder {
    private final URI base;
    private KeyStore keyStore;
    private char[] keyPassword;
    private KeyStore trustStore;
    private Duration timeout = Duration.ofSeconds(30);

    private Builder(URI base) {
      this.base = Objects.requireNonNull(base, "base");
      if (!"https".equals(base.getScheme())) {
        throw new IllegalArgumentException("keyship serve on TCP needs mutual TLS: want an https:// URI, got " + base);
      }
    }

    /**
     * The client's certificate and key: a JKS or PKCS12 store ({@code
     * type}) opened with {@code storePassword}, its key with {@code
     * keyPassword}. The passwords are not kept.
     */
    public Builder keyStore(Path path, String type, char[] storePassword, char[] keyPassword)
        throws IOException, GeneralSecurityException {
      this.keyStore = load(path, type, storePassword);
      this.keyPassword = keyPassword.clone();
      return this;
    }

    /** The CA certificates the server's certificate must chain to. */
    public Builder trustStore(Path path, String type, char[] password)
        throws IOException, GeneralSecurityException {
      this.trustStore = load(path, type, password);
      return this;
    }

    /** How long one call may take (default 30 s). */
    public Builder timeout(Duration timeout) {
      this.timeout = Objects.requireNonNull(timeout, "timeout");
      return this;
    }

    public KeyshipClient build() throws GeneralSecurityException {
      if (keyStore == null || trustStore == null) {
        throw new IllegalStateException("keyship serve requires mutual TLS: set keyStore and trustStore");
      }
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keyStore, keyPassword);
      Arrays.fill(keyPassword, '\0');
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trustStore);
      SSLContext tls = SSLContext.getInstance("TLS");
      tls.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
      // HTTP/1.1 (kept alive, one connection per concurrent call): Connect's
      // unary calls need nothing more, and over HTTP/2 the JDK 17 client
      // does not surface the server's TLS 1.3 alert when it refuses the
      // client certificate: the call hangs until its timeout instead of
      // failing with an SSLHandshakeException.
      HttpClient http =
          HttpClient.newBuilder()
              .sslContext(tls)
              .version(HttpClient.Version.HTTP_1_1)
              .connectTimeout(timeout)
              .build();
      return new KeyshipClient(base, http, timeout);
    }

    private static KeyStore load(Path path, String type, char[] password)
        throws IOException, GeneralSecurityException {
      KeyStore ks = KeyStore.getInstance(type);
      try (InputStream in = Files.newInputStream(path)) {
        ks.load(in, password);
      }
      return ks;
    }
  }
}
