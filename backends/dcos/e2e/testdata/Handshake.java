// Handshake is the JSSE side of the DC/OS end-to-end tests: it serves TLS
// with a keystore and connects to itself with a truststore, verifying the
// server's certificate and host name the way a Spark or Flink JVM does
// (endpoint identification "HTTPS"). The passwords come from files, never
// from the command line.
//
//   java Handshake.java KEYSTORE STOREPASS_FILE KEYPASS_FILE TRUSTSTORE TRUSTPASS_FILE HOST PROTOCOL
//
// The client dials the loopback address but verifies the server as HOST, as
// a client that dialled HOST would. It prints "handshake ok <protocol>
// <peer subject>" and exits 0, or prints the failure and exits 1.
import java.io.FileInputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class Handshake {
    static char[] password(String file) throws Exception {
        return Files.readString(Path.of(file)).strip().toCharArray();
    }

    static KeyStore load(String path, char[] pass) throws Exception {
        KeyStore ks = KeyStore.getInstance("JKS");
        try (FileInputStream in = new FileInputStream(path)) {
            ks.load(in, pass);
        }
        return ks;
    }

    public static void main(String[] args) throws Exception {
        String host = args[5], protocol = args[6];
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(load(args[0], password(args[1])), password(args[2]));
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(load(args[3], password(args[4])));

        SSLContext server = SSLContext.getInstance("TLS");
        server.init(kmf.getKeyManagers(), null, null);
        SSLContext client = SSLContext.getInstance("TLS");
        client.init(null, tmf.getTrustManagers(), null);

        InetAddress loopback = InetAddress.getLoopbackAddress();
        try (SSLServerSocket ss = (SSLServerSocket) server.getServerSocketFactory().createServerSocket(0, 1, loopback)) {
            ss.setEnabledProtocols(new String[] {protocol});
            Thread t = new Thread(() -> {
                try (SSLSocket s = (SSLSocket) ss.accept()) {
                    s.startHandshake();
                    s.getOutputStream().write(1);
                    s.getOutputStream().flush();
                } catch (Exception e) {
                    // the client reports the failure
                }
            });
            t.start();
            Socket plain = new Socket(loopback, ss.getLocalPort());
            // Layered over the plain socket, the TLS socket's peer host is
            // HOST: endpoint identification checks the certificate against it.
            try (SSLSocket s = (SSLSocket) client.getSocketFactory().createSocket(plain, host, ss.getLocalPort(), true)) {
                SSLParameters p = s.getSSLParameters();
                p.setEndpointIdentificationAlgorithm("HTTPS");
                p.setProtocols(new String[] {protocol});
                s.setSSLParameters(p);
                s.startHandshake();
                if (s.getInputStream().read() != 1) {
                    throw new IllegalStateException("no byte from the server after the handshake");
                }
                System.out.println("handshake ok " + s.getSession().getProtocol() + " " + s.getSession().getPeerPrincipal());
            } catch (Exception e) {
                System.out.println("handshake failed: " + e);
                System.exit(1);
            }
            t.join();
        }
    }
}
