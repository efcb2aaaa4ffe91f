package com.github.keyship.client;

import java.util.Base64;
import java.util.List;

/**
 * HostApi holds the messages of keyship's host API (proto
 * keyship.host.v1, see proto/keyship/host/v1/host.proto), as Java records in
 * proto3's JSON form: lowerCamelCase names, bytes as base64, enums by name.
 * Absent lists read as empty lists. Fields marked secret in the proto
 * ({@link File#contents}, {@link Secret#value}) never appear in
 * {@code toString()}.
 */
public final class HostApi {
  private HostApi() {}

  /** The language of a TLS request document: {@code DIALECT_DCOS}, {@code DIALECT_SPARK}, ... */
  public static final String DIALECT_UNSPECIFIED = "DIALECT_UNSPECIFIED";
  public static final String DIALECT_DCOS = "DIALECT_DCOS";
  public static final String DIALECT_SPARK = "DIALECT_SPARK";
  public static final String DIALECT_FLINK = "DIALECT_FLINK";
  public static final String DIALECT_LIBPROCESS = "DIALECT_LIBPROCESS";

  /** How the files reach the tasks. */
  public static final String TARGET_FETCH = "TARGET_FETCH";
  public static final String TARGET_MESOS = "TARGET_MESOS";
  public static final String TARGET_FILES = "TARGET_FILES";

  static <T> List<T> orEmpty(List<T> l) {
    return l == null ? List.of() : List.copyOf(l);
  }

  /** One task of the job: a driver, an executor, a TaskManager. */
  public record Task(String id, String role, List<String> hosts) {
    public Task {
      hosts = orEmpty(hosts);
    }
  }

  /**
   * ShipRequest asks for a job's stores. {@code spec} is the TLS request
   * document (at most 1 MiB); {@code targets} empty means TARGET_FETCH;
   * {@code fetchUses} and {@code ttlSeconds} may be null for the server's
   * defaults.
   */
  public record ShipRequest(
      String jobId,
      byte[] spec,
      String dialect,
      List<Task> tasks,
      List<String> targets,
      Integer fetchUses,
      Long ttlSeconds) {
    public ShipRequest {
      tasks = orEmpty(tasks);
      targets = orEmpty(targets);
    }
  }

  /** What each task of the job gets. */
  public record ShipResponse(
      String jobId,
      List<File> files,
      List<TaskShipment> tasks,
      List<Setting> settings,
      List<String> warnings,
      long expiresUnix) {
    public ShipResponse {
      files = orEmpty(files);
      tasks = orEmpty(tasks);
      settings = orEmpty(settings);
      warnings = orEmpty(warnings);
    }
  }

  /** One built file; {@code contents} only with TARGET_FILES (secret). */
  public record File(String path, int mode, String version, String role, byte[] contents) {
    @Override
    public String toString() {
      return "File[path=" + path + ", mode=" + Integer.toOctalString(mode) + ", version=" + version + ", role=" + role + "]";
    }
  }

  /** What one task needs in its TaskInfo. */
  public record TaskShipment(String taskId, List<FetchUri> uris, List<SecretVolume> volumes, List<SecretEnv> env) {
    public TaskShipment {
      uris = orEmpty(uris);
      volumes = orEmpty(volumes);
      env = orEmpty(env);
    }
  }

  /** A mesos.CommandInfo.URI; its value holds the fetch token (secret). */
  public record FetchUri(String value, boolean executable, boolean extract, boolean cache, String outputFile) {
    @Override
    public String toString() {
      return "FetchUri[outputFile=" + outputFile + "]";
    }
  }

  /** A file-based Mesos secret (Volume.Source.SECRET). */
  public record SecretVolume(String containerPath, Secret secret) {}

  /** An environment-based Mesos secret (Environment.Variable.SECRET). */
  public record SecretEnv(String name, Secret secret) {}

  /** A mesos.Secret: a reference to a stored secret, or a value (secret). */
  public record Secret(SecretReference reference, byte[] value) {
    /** Whether Mesos resolves this secret from the store itself. */
    public boolean isReference() {
      return reference != null;
    }

    /** The value in base64, as a Mesos TaskInfo's JSON carries it. */
    public String valueBase64() {
      return value == null ? null : Base64.getEncoder().encodeToString(value);
    }

    @Override
    public String toString() {
      return reference != null ? "Secret[reference=" + reference + "]" : "Secret[value=redacted]";
    }
  }

  /** A mesos.Secret.Reference. */
  public record SecretReference(String name, String key) {}

  /** One key = value of the consumer's configuration; never a password. */
  public record Setting(String key, String value) {}

  /** CheckRequest asks whether a job's TLS would work on {@code hosts}. */
  public record CheckRequest(byte[] spec, String dialect, List<String> hosts) {
    public CheckRequest {
      hosts = orEmpty(hosts);
    }
  }

  /** Every problem found; {@code ok} when none. */
  public record CheckResponse(boolean ok, List<Problem> problems, List<String> warnings) {
    public CheckResponse {
      problems = orEmpty(problems);
      warnings = orEmpty(warnings);
    }
  }

  /** One failed check: the setting, its ref, and what is wrong. */
  public record Problem(String field, String ref, String reason) {}
}
