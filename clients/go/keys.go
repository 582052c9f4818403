package pintuan

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ReadKeyFile reads a client key file as pintuand --make-key writes it:
// one line "NAME SECRET" (libpintuan's pintuan_read_key_file).
func ReadKeyFile(path string) (name, secret string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("key file %s: %w", path, err)
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 512).ReadString('\n')
	if err != nil && line == "" {
		return "", "", fmt.Errorf("key file %s: want one line NAME SECRET (as pintuand --make-key writes)", path)
	}
	w := strings.Fields(line)
	if len(w) != 2 {
		return "", "", fmt.Errorf("key file %s: want one line NAME SECRET (as pintuand --make-key writes)", path)
	}
	if len(w[0]) > 127 || len(w[1]) > 255 {
		return "", "", fmt.Errorf("key file %s: name or secret too long", path)
	}
	return w[0], w[1], nil
}

// TLSConfig makes the configuration WithTLS takes: the daemon's
// certificate verified against the CA certificates in caFile (PEM; "":
// the system's), TLS 1.2 or later, and when certFile and keyFile are given
// the client's own certificate (its subject CN may name a key: the daemon
// then gives the connection that key's role without a Hello).
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	if (certFile != "") != (keyFile != "") {
		return nil, errors.New("TLS: a client certificate needs both cert_file and key_file")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("TLS: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS: CA file %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("TLS: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
