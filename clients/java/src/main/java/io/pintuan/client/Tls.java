package io.pintuan.client;

import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.InvalidKeySpecException;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.List;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;

/**
 * An SSLContext from PEM files, as libpintuan takes them: the CA
 * certificates that may sign the daemon's certificate, and optionally the
 * client's certificate chain and private key. Java's KeyStore wants the key
 * in PKCS#8: "-----BEGIN PRIVATE KEY-----" (EC, RSA, Ed25519 or Ed448); a
 * traditional "BEGIN EC PRIVATE KEY" or "BEGIN RSA PRIVATE KEY" file is
 * refused with the command that converts it:
 * {@code openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8}.
 */
public final class Tls {
  private Tls() {}

  /** caFile null: the system's CAs; certFile and keyFile both or neither. */
  public static SSLContext context(Path caFile, Path certFile, Path keyFile) {
    try {
      TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      if (caFile != null) {
        KeyStore ts = KeyStore.getInstance("PKCS12");
        ts.load(null, null);
        List<Certificate> cas = certificates(caFile);
        for (int i = 0; i < cas.size(); i++) ts.setCertificateEntry("ca-" + i, cas.get(i));
        tmf.init(ts);
      } else {
        tmf.init((KeyStore) null);
      }
      KeyManager[] kms = null;
      if (certFile != null || keyFile != null) {
        if (certFile == null || keyFile == null)
          throw new PintuanException("TLS: a client certificate needs both cert_file and key_file");
        List<Certificate> chain = certificates(certFile);
        PrivateKey key = privateKey(keyFile);
        X509Certificate[] xs = new X509Certificate[chain.size()];
        for (int i = 0; i < xs.length; i++) xs[i] = (X509Certificate) chain.get(i);
        if (!matches(xs[0].getPublicKey(), key))
          throw new PintuanException("TLS: " + keyFile + " is not the key of " + certFile);
        kms = new KeyManager[] {new ClientKey(xs, key)};
      }
      SSLContext ctx = SSLContext.getInstance("TLS");
      ctx.init(kms, tmf.getTrustManagers(), null);
      return ctx;
    } catch (GeneralSecurityException | IOException e) {
      throw new PintuanException("TLS: " + e.getMessage(), e);
    }
  }

  /** Every certificate of a PEM file (or DER), in order. */
  public static List<Certificate> certificates(Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      Collection<? extends Certificate> certs = CertificateFactory.getInstance("X.509").generateCertificates(in);
      if (certs.isEmpty()) throw new PintuanException("TLS: " + file + ": no certificate");
      return new ArrayList<>(certs);
    } catch (GeneralSecurityException | IOException e) {
      throw new PintuanException("TLS: " + file + ": " + e.getMessage(), e);
    }
  }

  /** A PKCS#8 PEM private key ("BEGIN PRIVATE KEY"): EC, RSA, Ed25519 or Ed448. */
  public static PrivateKey privateKey(Path file) {
    String pem;
    try {
      pem = new String(Files.readAllBytes(file), StandardCharsets.US_ASCII);
    } catch (IOException e) {
      throw new PintuanException("TLS: " + file + ": " + e.getMessage(), e);
    }
    String begin = "-----BEGIN PRIVATE KEY-----";
    String end = "-----END PRIVATE KEY-----";
    int b = pem.indexOf(begin);
    int e = b < 0 ? -1 : pem.indexOf(end, b);
    if (b < 0 || e < 0) {
      String kind = pem.contains("BEGIN EC PRIVATE KEY") ? "a traditional EC key"
          : pem.contains("BEGIN RSA PRIVATE KEY") ? "a traditional RSA key"
          : pem.contains("BEGIN ENCRYPTED PRIVATE KEY") ? "an encrypted key"
          : "no \"BEGIN PRIVATE KEY\" block";
      throw new PintuanException("TLS: " + file + ": " + kind + "; the key must be PKCS#8 PEM without a"
          + " passphrase: convert it with openssl pkcs8 -topk8 -nocrypt -in " + file + " -out KEY.pk8");
    }
    byte[] der;
    try {
      der = Base64.getMimeDecoder().decode(pem.substring(b + begin.length(), e));
    } catch (IllegalArgumentException x) {
      throw new PintuanException("TLS: " + file + ": bad base64 in the key", x);
    }
    PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(der);
    for (String alg : new String[] {"EC", "RSA", "Ed25519", "Ed448", "RSASSA-PSS"}) {
      try {
        return KeyFactory.getInstance(alg).generatePrivate(spec);
      } catch (InvalidKeySpecException | java.security.NoSuchAlgorithmException ignored) {
        // not this algorithm
      }
    }
    throw new PintuanException("TLS: " + file + ": not an EC, RSA or EdDSA PKCS#8 key");
  }

  /** Does key sign what publicKey verifies? */
  private static boolean matches(PublicKey publicKey, PrivateKey key) {
    String alg = key.getAlgorithm();
    if (!publicKey.getAlgorithm().equals(alg)) return false;
    if (alg.equals("RSASSA-PSS")) return true; // its parameters vary: the handshake will tell
    String sig = alg.equals("EC") ? "SHA256withECDSA" : alg.equals("RSA") ? "SHA256withRSA" : alg; // EdDSA
    try {
      byte[] probe = "pintuan".getBytes(StandardCharsets.US_ASCII);
      Signature s = Signature.getInstance(sig);
      s.initSign(key);
      s.update(probe);
      byte[] signed = s.sign();
      Signature v = Signature.getInstance(sig);
      v.initVerify(publicKey);
      v.update(probe);
      return v.verify(signed);
    } catch (GeneralSecurityException e) {
      return false;
    }
  }

  /**
   * The one client certificate, offered whatever CAs the daemon names (as
   * OpenSSL does): a KeyStore would encrypt and decrypt the key with a
   * password-based cipher, which costs about a second.
   */
  private static final class ClientKey extends X509ExtendedKeyManager {
    private static final String ALIAS = "client";
    private final X509Certificate[] chain;
    private final PrivateKey key;

    ClientKey(X509Certificate[] chain, PrivateKey key) {
      this.chain = chain;
      this.key = key;
    }

    private String alias(String[] keyTypes) {
      String alg = key.getAlgorithm();
      if (keyTypes == null) return ALIAS;
      for (String t : keyTypes) {
        if (t.equals(alg) || t.startsWith(alg + "_") || (alg.startsWith("Ed") && t.equals("EdDSA"))) return ALIAS;
      }
      return null;
    }

    @Override
    public String chooseClientAlias(String[] keyTypes, Principal[] issuers, Socket socket) {
      return alias(keyTypes);
    }

    @Override
    public String chooseEngineClientAlias(String[] keyTypes, Principal[] issuers, SSLEngine engine) {
      return alias(keyTypes);
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
      return alias(new String[] {keyType}) != null ? new String[] {ALIAS} : null;
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
      return null;
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
      return null;
    }

    @Override
    public X509Certificate[] getCertificateChain(String alias) {
      return ALIAS.equals(alias) ? chain.clone() : null;
    }

    @Override
    public PrivateKey getPrivateKey(String alias) {
      return ALIAS.equals(alias) ? key : null;
    }
  }
}
