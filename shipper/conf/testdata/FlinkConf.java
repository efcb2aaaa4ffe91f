// FlinkConf loads a Flink configuration file the way Flink does, and prints
// each setting as Flink's Configuration would hand it to SSLUtils, without
// printing a password.
//
// Usage: java -cp snakeyaml.jar:. FlinkConf standard|legacy FILE
//
//   standard: Flink 1.19+'s config.yaml, as GlobalConfiguration.loadYAMLResource
//             reads it: YamlParserUtils.loadYamlFile, then flatten (nested maps
//             joined with ".", lists dumped as YAML), then, for a String option,
//             ConfigurationUtils.convertToString (a String as is, anything else
//             as YamlParserUtils.toYAMLString). Flink's YamlParserUtils loads
//             with snakeyaml-engine (new Load(LoadSettings.builder()
//             .setSchema(new CoreSchema())), FLINK-34257, Flink 1.19+:
//             YAML 1.2 Core schema typing, duplicate keys refused, the
//             LoadSettings default). snakeyaml-engine is not packaged by
//             Debian, so this loads with SnakeYAML 1.x's parser (Debian's
//             libyaml-snake-java) with duplicate keys refused and a resolver
//             holding exactly the YAML 1.2 Core schema's tag resolution
//             (YAML 1.2.2 spec, section 10.3.2: the patterns snakeyaml-engine's
//             CoreScalarResolver implements) instead of YAML 1.1's. For what
//             keyship's fragments hold (plain keys; double-quoted values with
//             backslash escapes (of a quote, a backslash, and uXXXX and UXXXXXXXX), which both YAML versions read the
//             same; plain true and false) the two parsers give the same map.
//   legacy:   Flink 1.18's flink-conf.yaml, as GlobalConfiguration.
//             loadLegacyYAMLResource reads it: each line cut at its first "#",
//             read in the JVM's default charset (InputStreamReader without
//             one), trimmed, split at the first ": ", key and value trimmed, lines
//             with an empty key or value skipped; the last value of a key wins.
//
// Output: one line per setting, sorted: KEY <TAB> JAVA-TYPE <TAB> SHA-256 of
// the string Flink's getString returns (hex), so that the caller compares
// values without them being printed. A load error prints "FAIL " and the
// error as Flink's wrapExceptionToHiddenSensitiveData would (no snippet of
// the document, which may hold a password), and exits 1.
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.Constructor;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.nodes.Tag;
import org.yaml.snakeyaml.representer.Representer;
import org.yaml.snakeyaml.resolver.Resolver;

public class FlinkConf {
    static final DumperOptions dumperOptions = new DumperOptions();
    static final LoaderOptions loaderOptions = new LoaderOptions();
    static final Yaml yaml;

    static {
        // As YamlParserUtils' static initializer.
        dumperOptions.setDefaultFlowStyle(DumperOptions.FlowStyle.FLOW);
        dumperOptions.setWidth(Integer.MAX_VALUE);
        loaderOptions.setAllowDuplicateKeys(false);
        yaml = new Yaml(new Constructor(loaderOptions), new Representer(dumperOptions), dumperOptions, loaderOptions, new CoreResolver());
    }

    // CoreResolver resolves plain scalars by the YAML 1.2 Core schema (YAML
    // 1.2.2, 10.3.2 Tag Resolution), as snakeyaml-engine's CoreSchema does:
    // on, yes, 1:20:30 and 2001-12-14 are strings there, True and 0x1F are
    // not.
    static class CoreResolver extends Resolver {
        @Override
        protected void addImplicitResolvers() {
            addImplicitResolver(Tag.NULL, Pattern.compile("^(?:null|Null|NULL|~)$"), "nN~");
            addImplicitResolver(Tag.NULL, Pattern.compile("^$"), null);
            addImplicitResolver(Tag.BOOL, Pattern.compile("^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF");
            addImplicitResolver(Tag.INT, Pattern.compile("^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), "-+0123456789");
            addImplicitResolver(Tag.FLOAT, Pattern.compile(
                    "^(?:[-+]?(?:\\.[0-9]+|[0-9]+(?:\\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$"),
                    "-+0123456789.");
        }
    }

    public static void main(String[] args) throws Exception {
        Map<String, Object> conf;
        try {
            conf = args[0].equals("standard") ? standard(args[1]) : legacy(args[1]);
        } catch (MarkedYAMLException e) {
            StringBuilder sb = new StringBuilder("FAIL ");
            if (e.getContext() != null) sb.append(e.getContext()).append(" ");
            if (e.getProblem() != null) sb.append(e.getProblem());
            if (e.getProblemMark() != null) sb.append(" at line ").append(e.getProblemMark().getLine() + 1);
            System.out.println(sb);
            System.exit(1);
            return;
        }
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        for (Map.Entry<String, Object> e : new TreeMap<>(conf).entrySet()) {
            Object v = e.getValue();
            String type = v == null ? "null" : v.getClass().getSimpleName();
            String s = v == null ? "" : convertToString(v);
            StringBuilder hex = new StringBuilder();
            for (byte b : sha.digest(s.getBytes(StandardCharsets.UTF_8))) hex.append(String.format("%02x", b));
            System.out.println(e.getKey() + "\t" + type + "\t" + hex);
        }
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> standard(String file) throws Exception {
        try (FileInputStream in = new FileInputStream(file)) {
            Map<String, Object> doc = yaml.load(in);
            return flatten(doc == null ? new HashMap<>() : doc, "");
        }
    }

    // GlobalConfiguration.flatten.
    @SuppressWarnings("unchecked")
    static Map<String, Object> flatten(Map<String, Object> config, String prefix) {
        Map<String, Object> out = new HashMap<>();
        config.forEach((key, value) -> {
            String k = prefix + key;
            if (value instanceof Map) {
                out.putAll(flatten((Map<String, Object>) value, k + "."));
            } else if (value instanceof List) {
                out.put(k, toYAMLString(value));
            } else {
                out.put(k, value);
            }
        });
        return out;
    }

    // ConfigurationUtils.convertToString for standard YAML.
    static String convertToString(Object o) {
        if (o.getClass() == String.class) return (String) o;
        return toYAMLString(o);
    }

    // YamlParserUtils.toYAMLString.
    static String toYAMLString(Object value) {
        String out = yaml.dump(value);
        String lb = dumperOptions.getLineBreak().getString();
        return out.endsWith(lb) ? out.substring(0, out.length() - lb.length()) : out;
    }

    static Map<String, Object> legacy(String file) throws Exception {
        Map<String, Object> out = new HashMap<>();
        // As Flink: no charset, so the JVM's default one (the locale's on Java 17).
        try (BufferedReader r = new BufferedReader(new InputStreamReader(new FileInputStream(file)))) {
            String line;
            while ((line = r.readLine()) != null) {
                String conf = line.split("#", 2)[0].trim();
                if (conf.length() == 0) continue;
                String[] kv = conf.split(": ", 2);
                if (kv.length == 1) continue;
                String key = kv[0].trim(), value = kv[1].trim();
                if (key.length() == 0 || value.length() == 0) continue;
                out.put(key, value);
            }
        }
        return out;
    }
}
