// Handshake runs a JSSE TLS server with a keystore and, for each host name
// given, a JSSE client with a truststore that connects to it and verifies the
// server's certificate for that name (endpoint identification "HTTPS").
//
//	java Handshake.java <keystore.p12> <truststore.p12> <password> <host>...
//
// It prints one line per host, "OK <host>" or "FAIL <host>: <reason>", and
// exits 0 when it could run at all.
import java.io.FileInputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.security.KeyStore;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class Handshake {
    public static void main(String[] args) throws Exception {
        char[] password = args[2].toCharArray();
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[0])) { ks.load(in, password); }
        KeyStore ts = KeyStore.getInstance("PKCS12");
        try (FileInputStream in = new FileInputStream(args[1])) { ts.load(in, password); }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, password);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(ts);
        SSLContext serverCtx = SSLContext.getInstance("TLSv1.3");
        serverCtx.init(kmf.getKeyManagers(), null, null);
        SSLContext clientCtx = SSLContext.getInstance("TLSv1.3");
        clientCtx.init(null, tmf.getTrustManagers(), null);

        SSLServerSocket server = (SSLServerSocket) serverCtx.getServerSocketFactory()
            .createServerSocket(0, 50, InetAddress.getLoopbackAddress());
        Thread acceptor = new Thread(() -> {
            while (true) {
                try (SSLSocket s = (SSLSocket) server.accept()) {
                    s.setSoTimeout(10000);
                    s.startHandshake();
                    s.getOutputStream().write('k');
                    s.getOutputStream().flush();
                } catch (Exception e) {
                    if (server.isClosed()) return;
                }
            }
        });
        acceptor.setDaemon(true);
        acceptor.start();

        for (int i = 3; i < args.length; i++) {
            String host = args[i];
            try (Socket plain = new Socket(InetAddress.getLoopbackAddress(), server.getLocalPort())) {
                plain.setSoTimeout(10000);
                SSLSocket s = (SSLSocket) clientCtx.getSocketFactory().createSocket(plain, host, server.getLocalPort(), true);
                SSLParameters p = s.getSSLParameters();
                p.setEndpointIdentificationAlgorithm("HTTPS");
                s.setSSLParameters(p);
                s.startHandshake();
                if (s.getInputStream().read() != 'k') throw new IllegalStateException("no data after the handshake");
                System.out.println("OK " + host);
                s.close();
            } catch (Exception e) {
                System.out.println("FAIL " + host + ": " + e);
            }
        }
        server.close();
    }
}
