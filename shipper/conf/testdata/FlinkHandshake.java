// FlinkHandshake runs one TLS handshake between two Flink endpoints that take
// their internal TLS settings from one Flink configuration file, configured
// the way Flink configures them (SSLUtils, Flink 1.x and 2.x):
//
//   - the settings are read as FlinkConf reads them (standard: config.yaml
//     through SnakeYAML; legacy: flink-conf.yaml line by line), with the
//     internal endpoint's keys falling back to the older security.ssl.* ones
//     and Flink's defaults for what is missing (security.ssl.protocol
//     TLSv1.2, security.ssl.algorithms TLS_RSA_WITH_AES_128_CBC_SHA,
//     *-type KeyStore.getDefaultType(), verify-hostname true);
//   - the keystore opens with its password, its key with the key password
//     (getKeyManagerFactory), the truststore with its password
//     (getTrustManagerFactory);
//   - both sides enable exactly the protocols security.ssl.protocol lists and
//     the cipher suites security.ssl.algorithms lists, split on ","
//     (getEnabledProtocols, getEnabledCipherSuites: setEnabledProtocols,
//     setEnabledCipherSuites), and the server needs the client's
//     certificate (internal TLS is mutual: setNeedClientAuth(true));
//   - the client checks the server's name (endpoint identification HTTPS)
//     when verify-hostname is true.
//
// With a fourth argument "rest-anonymous", the server is Flink's REST
// endpoint instead (SSLUtils.createRestServerSSLEngineFactory: the
// security.ssl.rest.* stores, falling back to security.ssl.*, and the
// client's certificate needed only when
// security.ssl.rest.authentication-enabled is true, its default false), and
// the client presents no certificate, as a browser or curl without --cert:
// the handshake fails exactly when the REST endpoint is mutual TLS.
//
// Usage: java -cp snakeyaml.jar:. FlinkHandshake standard|legacy FILE HOSTNAME [rest-anonymous]
// (relative store paths are relative to the working directory, as in a
// TaskManager). It connects to 127.0.0.1, giving HOSTNAME for SNI and the
// name check.
//
// Output: "OK <protocol> <suite>" and exit 0, or "FAIL <exception chain>" and
// exit 1. It never prints a password.
import java.io.FileInputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.security.KeyStore;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class FlinkHandshake {
    public static void main(String[] args) {
        try {
            System.out.println("OK " + run(args));
            System.exit(0);
        } catch (Throwable e) {
            StringBuilder sb = new StringBuilder("FAIL");
            for (Throwable t = e; t != null; t = t.getCause()) {
                sb.append(t == e ? " " : ": caused by ").append(t.getClass().getName());
                if (t.getMessage() != null) sb.append(": ").append(t.getMessage());
            }
            System.out.println(sb);
            System.exit(1);
        }
    }

    static Map<String, Object> conf;

    static String get(String key, String fallback, String def) {
        Object v = conf.get(key);
        if (v == null && fallback != null) v = conf.get(fallback);
        return v == null ? def : FlinkConf.convertToString(v);
    }

    static String endpoint = "internal";

    static String internal(String s) {
        String v = get("security.ssl." + endpoint + "." + s, "security.ssl." + s, null);
        if (v == null) throw new IllegalArgumentException("The config option security.ssl." + endpoint + "." + s + " or security.ssl." + s + " is missing.");
        return v;
    }

    static KeyStore load(String path, String type, String password) throws Exception {
        KeyStore ks = KeyStore.getInstance(type);
        try (FileInputStream in = new FileInputStream(path)) {
            ks.load(in, password.toCharArray());
        }
        return ks;
    }

    static String run(String[] a) throws Exception {
        conf = a[0].equals("standard") ? FlinkConf.standard(a[1]) : FlinkConf.legacy(a[1]);
        String hostname = a[2];
        boolean rest = a.length > 3 && a[3].equals("rest-anonymous");
        if (rest) endpoint = "rest";
        String[] protocols = get("security.ssl.protocol", null, "TLSv1.2").split(",");
        String[] suites = get("security.ssl.algorithms", null, "TLS_RSA_WITH_AES_128_CBC_SHA").split(",");
        boolean verify = Boolean.parseBoolean(get("security.ssl.verify-hostname", null, "true"));

        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(load(internal("keystore"), get("security.ssl." + endpoint + ".keystore-type", null, KeyStore.getDefaultType()), internal("keystore-password")),
                internal("key-password").toCharArray());
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(load(internal("truststore"), get("security.ssl." + endpoint + ".truststore-type", null, KeyStore.getDefaultType()), internal("truststore-password")));
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        SSLContext clientCtx = ctx;
        if (rest) {
            clientCtx = SSLContext.getInstance("TLS");
            clientCtx.init(null, tmf.getTrustManagers(), null);
        }

        InetAddress loopback = InetAddress.getByName("127.0.0.1");
        SSLServerSocket server = (SSLServerSocket) ctx.getServerSocketFactory().createServerSocket(0, 1, loopback);
        server.setEnabledProtocols(protocols);
        server.setEnabledCipherSuites(suites);
        server.setNeedClientAuth(!rest || Boolean.parseBoolean(get("security.ssl.rest.authentication-enabled", null, "false")));
        CompletableFuture<String> served = new CompletableFuture<>();
        Thread t = new Thread(() -> {
            try (SSLSocket s = (SSLSocket) server.accept()) {
                s.setSoTimeout(30000);
                s.startHandshake();
                served.complete(s.getSession().getProtocol());
                s.getOutputStream().write(1);
                s.getOutputStream().flush();
                s.getInputStream().read();
            } catch (Throwable e) {
                served.completeExceptionally(e);
            }
        }, "server");
        t.setDaemon(true);
        t.start();

        Socket raw = new Socket();
        raw.connect(new InetSocketAddress(loopback, server.getLocalPort()), 30000);
        raw.setSoTimeout(30000);
        try (SSLSocket client = (SSLSocket) clientCtx.getSocketFactory().createSocket(raw, hostname, server.getLocalPort(), true)) {
            SSLParameters p = client.getSSLParameters();
            p.setProtocols(protocols);
            p.setCipherSuites(suites);
            if (verify) p.setEndpointIdentificationAlgorithm("HTTPS");
            if (!hostname.matches("[0-9.]+")) p.setServerNames(List.of(new SNIHostName(hostname)));
            client.setSSLParameters(p);
            try {
                client.startHandshake();
            } catch (Exception e) {
                // The server's exception says why when it refused.
                try {
                    served.get(5, TimeUnit.SECONDS);
                } catch (java.util.concurrent.ExecutionException se) {
                    throw new Exception(e.toString(), se.getCause());
                }
                throw e;
            }
            if (client.getInputStream().read() != 1) throw new IllegalStateException("the server sent nothing after the handshake");
            String serverGot = served.get(30, TimeUnit.SECONDS);
            return client.getSession().getProtocol() + " " + client.getSession().getCipherSuite() + " (server " + serverGot + ")";
        }
    }
}
