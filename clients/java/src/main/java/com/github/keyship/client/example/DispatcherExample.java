package com.github.keyship.client.example;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.github.keyship.client.HostApi;
import com.github.keyship.client.KeyshipClient;
import com.github.keyship.client.KeyshipException;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * DispatcherExample does what a Spark Mesos dispatcher does at job
 * submission with keyship: it takes the job's spark.ssl.* configuration
 * (whose store settings hold secret refs) and the hosts its executors will
 * run on, calls Ship with the Mesos target, and prints, as JSON, for each
 * task the TaskInfo fragment to merge (container.volumes of type SECRET and
 * command.environment variables of type SECRET, in Mesos' JSON form) and
 * the spark.ssl.* settings to add to the job's properties.
 *
 * <pre>
 * java -cp keyship-client.jar:jackson-databind.jar:jackson-core.jar:jackson-annotations.jar \
 *   com.github.keyship.client.example.DispatcherExample \
 *   --server https://keyship.example.com:7443 \
 *   --keystore dispatcher.p12 --keystore-password-file keystore.password --key-password-file key.password \
 *   --truststore truststore.p12 --truststore-password-file truststore.password \
 *   --conf job-ssl.conf --job-id driver-20240101-0001 --executors node1,node2,node3
 * </pre>
 *
 * Passwords are read from files, never from the command line. The printed
 * fragment carries keyship-built stores and passwords as secret VALUEs: it
 * goes into the TaskInfo, never into a log.
 */
public final class DispatcherExample {
  private DispatcherExample() {}

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = parse(argv);
    KeyshipClient client =
        KeyshipClient.builder(URI.create(required(args, "--server")))
            .keyStore(
                Path.of(required(args, "--keystore")),
                args.getOrDefault("--keystore-type", "PKCS12"),
                password(args, "--keystore-password-file"),
                password(args, args.containsKey("--key-password-file") ? "--key-password-file" : "--keystore-password-file"))
            .trustStore(
                Path.of(required(args, "--truststore")),
                args.getOrDefault("--truststore-type", "PKCS12"),
                password(args, "--truststore-password-file"))
            .build();

    List<HostApi.Task> tasks = new ArrayList<>();
    if (args.containsKey("--driver-host")) {
      tasks.add(new HostApi.Task("driver", "driver", List.of(args.get("--driver-host"))));
    }
    String[] executors = required(args, "--executors").split(",");
    for (int i = 0; i < executors.length; i++) {
      tasks.add(new HostApi.Task("executor-" + (i + 1), "executor", List.of(executors[i].trim())));
    }
    HostApi.ShipRequest request =
        new HostApi.ShipRequest(
            required(args, "--job-id"),
            sparkSSL(Path.of(required(args, "--conf"))),
            HostApi.DIALECT_SPARK,
            tasks,
            List.of(HostApi.TARGET_MESOS),
            null,
            null);
    HostApi.ShipResponse response;
    try {
      response = client.ship(request);
    } catch (KeyshipException e) {
      System.err.println("keyship refused the job's TLS settings: " + e.getMessage());
      System.exit(1);
      return;
    }
    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    System.out.println(json.writeValueAsString(render(json, response)));
  }

  /** The spark.ssl.* lines of a spark-defaults.conf style file: all keyship needs. */
  static byte[] sparkSSL(Path conf) throws IOException {
    String kept =
        Files.readAllLines(conf, StandardCharsets.UTF_8).stream()
            .filter(l -> l.strip().startsWith("spark.ssl."))
            .collect(Collectors.joining("\n", "", "\n"));
    return kept.getBytes(StandardCharsets.UTF_8);
  }

  /** The response as what a dispatcher adds: per task a TaskInfo fragment, and the settings. */
  static ObjectNode render(ObjectMapper json, HostApi.ShipResponse r) {
    ObjectNode out = json.createObjectNode();
    out.put("jobId", r.jobId());
    out.put("expiresUnix", r.expiresUnix());
    ObjectNode tasks = out.putObject("tasks");
    for (HostApi.TaskShipment t : r.tasks()) {
      ObjectNode taskInfo = tasks.putObject(t.taskId());
      ArrayNode vars = taskInfo.putObject("command").putObject("environment").putArray("variables");
      for (HostApi.SecretEnv e : t.env()) {
        ObjectNode v = vars.addObject();
        v.put("name", e.name());
        v.put("type", "SECRET");
        v.set("secret", mesosSecret(json, e.secret()));
      }
      ObjectNode container = taskInfo.putObject("container");
      container.put("type", "MESOS");
      ArrayNode vols = container.putArray("volumes");
      for (HostApi.SecretVolume v : t.volumes()) {
        ObjectNode vol = vols.addObject();
        vol.put("mode", "RO");
        vol.put("container_path", v.containerPath());
        ObjectNode source = vol.putObject("source");
        source.put("type", "SECRET");
        source.set("secret", mesosSecret(json, v.secret()));
      }
    }
    ObjectNode settings = out.putObject("settings");
    for (HostApi.Setting s : r.settings()) {
      settings.put(s.key(), s.value());
    }
    ArrayNode warnings = out.putArray("warnings");
    r.warnings().forEach(warnings::add);
    return out;
  }

  /** A mesos.Secret in Mesos' JSON form. */
  static ObjectNode mesosSecret(ObjectMapper json, HostApi.Secret s) {
    ObjectNode out = json.createObjectNode();
    if (s.isReference()) {
      out.put("type", "REFERENCE");
      ObjectNode ref = out.putObject("reference");
      ref.put("name", s.reference().name());
      if (s.reference().key() != null && !s.reference().key().isEmpty()) {
        ref.put("key", s.reference().key());
      }
    } else {
      out.put("type", "VALUE");
      out.putObject("value").put("data", s.valueBase64());
    }
    return out;
  }

  private static Map<String, String> parse(String[] argv) {
    Map<String, String> out = new HashMap<>();
    for (int i = 0; i < argv.length; i++) {
      if (!argv[i].startsWith("--") || i + 1 == argv.length) {
        usage("unexpected argument " + argv[i]);
      }
      out.put(argv[i], argv[++i]);
    }
    return out;
  }

  private static String required(Map<String, String> args, String name) {
    String v = args.get(name);
    if (v == null || v.isEmpty()) {
      usage(name + " is required");
    }
    return v;
  }

  private static char[] password(Map<String, String> args, String name) throws IOException {
    byte[] raw = Files.readAllBytes(Path.of(required(args, name)));
    String s = new String(raw, StandardCharsets.UTF_8).strip();
    Arrays.fill(raw, (byte) 0);
    return s.toCharArray();
  }

  private static void usage(String problem) {
    System.err.println("DispatcherExample: " + problem);
    System.err.println(
        "usage: --server https://HOST:PORT --keystore FILE [--keystore-type PKCS12] --keystore-password-file FILE"
            + " [--key-password-file FILE] --truststore FILE [--truststore-type PKCS12] --truststore-password-file FILE"
            + " --conf SPARK_CONF --job-id ID --executors HOST[,HOST...] [--driver-host HOST]");
    System.exit(2);
  }
}
