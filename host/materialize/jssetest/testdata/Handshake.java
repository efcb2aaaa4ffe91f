// Handshake runs one TLS handshake between a JSSE server and a JSSE client in
// one JVM, as a Spark or Flink job would: the server presents the given
// keystore, the client trusts the given truststore and checks the server's
// name with endpoint identification "HTTPS".
//
// Usage: java Handshake KEYSTORE STORETYPE TRUSTSTORE TRUSTTYPE HOSTNAME PROTOCOL [SUITES]
// The store password, key password and truststore password are read from
// standard input, one per line, in UTF-8, so that they never appear in a
// process list. SUITES, when given, is a comma-separated list of cipher
// suites that both sides enable, and only them (as Flink's
// security.ssl.algorithms and Spark's spark.ssl.enabledAlgorithms do).
//
// It connects to 127.0.0.1 and gives HOSTNAME to the client socket (SNI and
// hostname verification), so that no name resolution is needed.
//
// Exit status: 0 and "OK <protocol>" when the handshake completes with the
// protocol asked for; 1 and "FAIL <exception chain>" otherwise. It never
// prints a password or key material.
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class Handshake {
    public static void main(String[] args) {
        try {
            String result = run(args);
            System.out.println("OK " + result);
            System.exit(0);
        } catch (Throwable e) {
            StringBuilder sb = new StringBuilder("FAIL");
            for (Throwable t = e; t != null; t = t.getCause()) {
                sb.append(t == e ? " " : ": caused by ").append(t.getClass().getName());
                if (t.getMessage() != null) {
                    sb.append(": ").append(t.getMessage());
                }
            }
            System.out.println(sb);
            System.exit(1);
        }
    }

    static KeyStore load(String path, String type, char[] password) throws Exception {
        KeyStore ks = KeyStore.getInstance(type);
        try (FileInputStream in = new FileInputStream(path)) {
            ks.load(in, password);
        }
        return ks;
    }

    static String run(String[] a) throws Exception {
        if (a.length != 6 && a.length != 7) {
            throw new IllegalArgumentException("usage: Handshake KEYSTORE STORETYPE TRUSTSTORE TRUSTTYPE HOSTNAME PROTOCOL [SUITES]");
        }
        String[] suites = a.length == 7 ? a[6].split(",") : null;
        String keystore = a[0], storeType = a[1], truststore = a[2], trustType = a[3], hostname = a[4], protocol = a[5];
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        char[] storePass = stdin.readLine().toCharArray();
        char[] keyPass = stdin.readLine().toCharArray();
        char[] trustPass = stdin.readLine().toCharArray();

        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(load(keystore, storeType, storePass), keyPass);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(load(truststore, trustType, trustPass));

        SSLContext serverCtx = SSLContext.getInstance(protocol);
        serverCtx.init(kmf.getKeyManagers(), null, null);
        SSLContext clientCtx = SSLContext.getInstance(protocol);
        clientCtx.init(null, tmf.getTrustManagers(), null);

        InetAddress loopback = InetAddress.getByName("127.0.0.1");
        SSLServerSocket server = (SSLServerSocket) serverCtx.getServerSocketFactory().createServerSocket(0, 1, loopback);
        server.setEnabledProtocols(new String[] {protocol});
        if (suites != null) server.setEnabledCipherSuites(suites);
        CompletableFuture<String> served = new CompletableFuture<>();
        Thread serverThread = new Thread(() -> {
            try (SSLSocket s = (SSLSocket) server.accept()) {
                s.setSoTimeout(30000);
                s.startHandshake();
                served.complete(s.getSession().getProtocol());
                s.getOutputStream().write(1);
                s.getOutputStream().flush();
                s.getInputStream().read(); // until the client closes
            } catch (Throwable e) {
                served.completeExceptionally(e);
            }
        }, "server");
        serverThread.setDaemon(true);
        serverThread.start();

        Socket raw = new Socket();
        raw.connect(new InetSocketAddress(loopback, server.getLocalPort()), 30000);
        raw.setSoTimeout(30000);
        try (SSLSocket client = (SSLSocket) clientCtx.getSocketFactory().createSocket(raw, hostname, server.getLocalPort(), true)) {
            SSLParameters p = client.getSSLParameters();
            p.setEndpointIdentificationAlgorithm("HTTPS");
            p.setProtocols(new String[] {protocol});
            if (suites != null) p.setCipherSuites(suites);
            if (!hostname.matches("[0-9.]+") && !hostname.contains(":")) {
                p.setServerNames(List.of(new SNIHostName(hostname)));
            }
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
            if (client.getInputStream().read() != 1) {
                throw new IllegalStateException("the server sent nothing after the handshake");
            }
            String got = client.getSession().getProtocol();
            String serverGot = served.get(30, TimeUnit.SECONDS);
            if (!got.equals(protocol) || !serverGot.equals(protocol)) {
                throw new IllegalStateException("negotiated " + got + " (server " + serverGot + "), asked for " + protocol);
            }
            return got;
        }
    }
}
