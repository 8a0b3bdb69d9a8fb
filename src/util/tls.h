/*
 * tls: OpenSSL contexts. A server context from the configured certificate,
 * or from a self-signed one generated in data_dir/tls/ on first start.
 * Public: tls_server_ctx_new, tls_client_ctx_new, tls_generate_selfsigned.
 */
#ifndef TANDEM_TLS_H
#define TANDEM_TLS_H
#include <openssl/ssl.h>
#include <stddef.h>

/* cert/key may be NULL: then data_dir/tls/{cert,key}.pem, generated when
 * absent for hostname. NULL on error with a message in err. */
SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, const char *data_dir,
			    const char *hostname, char *err, size_t errlen);
SSL_CTX *tls_client_ctx_new(void);
int tls_generate_selfsigned(const char *cert_path, const char *key_path,
			    const char *hostname, char *err, size_t errlen);

#endif
