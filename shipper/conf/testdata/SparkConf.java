// SparkConf reads a Spark properties file as spark-submit --properties-file
// does and opens the stores of each spark.ssl namespace as Spark's
// SSLOptions.parse would, for one Spark release:
//
//   - the file is read by Utils.getPropertiesFromFile: Properties.load of a
//     UTF-8 reader, each value trimmed;
//   - 2.2: SSLOptions.parse reads every setting with conf.getOption, so a
//     "${env:NAME}" password is taken literally (Spark 2.2, and the DC/OS
//     fork, mesosphere/spark core/src/main/scala/org/apache/spark/SSLOptions.scala);
//   - 2.3: it reads them with conf.getWithSubstitution, which ConfigReader
//     resolves: ${env:NAME} is the environment variable NAME (SPARK-20379);
//   - a namespace takes each setting it leaves out from spark.ssl
//     (SSLOptions.parse(conf, ns, Some(defaults))); spark.ssl.rpc does not
//     inherit enabled (Spark 4.0); a namespace that is not enabled is skipped;
//   - the keystore opens with keyStorePassword and its key with keyPassword
//     (else keyStorePassword), as Jetty's SslContextFactory does; the
//     truststore with trustStorePassword; the types default to
//     KeyStore.getDefaultType().
//
// Usage: java SparkConf 2.2|2.3 FILE [NAMESPACE...]   (spark.ssl is always read)
// Relative store paths are relative to the working directory.
//
// Output: "OK <namespace>" or "OFF <namespace>" per namespace, exit 0; or
// "FAIL <namespace>: <exception chain>" and exit 1. It never prints a
// password.
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManagerFactory;

public class SparkConf {
    static Properties props = new Properties();
    static boolean substitute;
    // ConfigReader.REF_RE.
    static final Pattern REF = Pattern.compile("\\$\\{(?:(\\w+?):)?(\\S+?)\\}");

    static String get(String key) {
        String v = props.getProperty(key);
        if (v == null || !substitute) return v;
        Matcher m = REF.matcher(v);
        StringBuilder sb = new StringBuilder();
        while (m.find()) {
            String repl = m.group(0);
            if ("env".equals(m.group(1)) && System.getenv(m.group(2)) != null) repl = System.getenv(m.group(2));
            m.appendReplacement(sb, Matcher.quoteReplacement(repl));
        }
        m.appendTail(sb);
        return sb.toString();
    }

    static String opt(String ns, String s, String def) {
        String v = get(ns + "." + s);
        return v != null ? v : def;
    }

    public static void main(String[] a) throws Exception {
        substitute = a[0].equals("2.3");
        try (Reader r = new InputStreamReader(new FileInputStream(a[1]), StandardCharsets.UTF_8)) {
            props.load(r);
        }
        for (String k : props.stringPropertyNames()) props.setProperty(k, props.getProperty(k).trim());
        boolean defEnabled = Boolean.parseBoolean(opt("spark.ssl", "enabled", "false"));
        String[] def = new String[] {
            opt("spark.ssl", "keyStore", null), opt("spark.ssl", "keyStorePassword", null), opt("spark.ssl", "keyPassword", null),
            opt("spark.ssl", "keyStoreType", null), opt("spark.ssl", "trustStore", null), opt("spark.ssl", "trustStorePassword", null),
            opt("spark.ssl", "trustStoreType", null)};
        String[] names = new String[a.length - 1];
        names[0] = "spark.ssl";
        for (int i = 2; i < a.length; i++) names[i - 1] = "spark.ssl." + a[i];
        int failed = 0;
        for (String ns : names) {
            boolean enabled = Boolean.parseBoolean(opt(ns, "enabled", String.valueOf(!ns.equals("spark.ssl.rpc") && defEnabled)));
            if (!enabled) {
                System.out.println("OFF " + ns);
                continue;
            }
            try {
                String ks = opt(ns, "keyStore", def[0]), ksp = opt(ns, "keyStorePassword", def[1]), kp = opt(ns, "keyPassword", def[2]);
                String kst = opt(ns, "keyStoreType", def[3]), ts = opt(ns, "trustStore", def[4]), tsp = opt(ns, "trustStorePassword", def[5]);
                String tst = opt(ns, "trustStoreType", def[6]);
                KeyStore k = KeyStore.getInstance(kst != null ? kst : KeyStore.getDefaultType());
                try (FileInputStream in = new FileInputStream(ks)) {
                    k.load(in, ksp.toCharArray());
                }
                KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm()).init(k, (kp != null ? kp : ksp).toCharArray());
                if (ts != null) {
                    KeyStore t = KeyStore.getInstance(tst != null ? tst : KeyStore.getDefaultType());
                    try (FileInputStream in = new FileInputStream(ts)) {
                        t.load(in, tsp == null ? null : tsp.toCharArray());
                    }
                }
                System.out.println("OK " + ns);
            } catch (Throwable e) {
                StringBuilder sb = new StringBuilder("FAIL " + ns + ":");
                for (Throwable t = e; t != null; t = t.getCause()) {
                    sb.append(t == e ? " " : ": caused by ").append(t.getClass().getName());
                    if (t.getMessage() != null) sb.append(": ").append(t.getMessage());
                }
                System.out.println(sb);
                failed++;
            }
        }
        System.exit(failed == 0 ? 0 : 1);
    }
}
