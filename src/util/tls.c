/*
 * tls: OpenSSL server/client contexts and the self-signed certificate a
 * fresh install starts with (see tls.h).
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/durable.h"
#include "util/tls.h"

static void
tls_errstr(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s: %s", what, e ? buf : "unknown error");
}

static int
tls_write_pem(const char *path, int mode, X509 *x, EVP_PKEY *pk)
{
	char tmp[4200];
	FILE *fp;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fp = fopen(tmp, "w")) == NULL)
		return -1;
	chmod(tmp, mode);
	ok = x ? PEM_write_X509(fp, x) : PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
		ok = 0;
	fclose(fp);
	if (!ok || durable_rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int
tls_generate_selfsigned(const char *cert_path, const char *key_path, const char *hostname,
			char *err, size_t errlen)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	char san[300];
	int rc = -1;

	if (pk == NULL || x == NULL) {
		tls_errstr(err, errlen, "generating key");
		goto out;
	}
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), (long)time(NULL));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400);
	X509_set_pubkey(x, pk);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	snprintf(san, sizeof(san), "DNS:%s", hostname);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san)) != NULL) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, pk, EVP_sha256()) == 0) {
		tls_errstr(err, errlen, "signing certificate");
		goto out;
	}
	if (tls_write_pem(key_path, 0600, NULL, pk) != 0 ||
	    tls_write_pem(cert_path, 0644, x, NULL) != 0) {
		snprintf(err, errlen, "writing %s: %s", cert_path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

SSL_CTX *
tls_server_ctx_new(const char *cert, const char *key, const char *data_dir,
		   const char *hostname, char *err, size_t errlen)
{
	char certbuf[4096], keybuf[4096], dir[4096];
	SSL_CTX *ctx;

	if (cert == NULL) {
		snprintf(dir, sizeof(dir), "%s/tls", data_dir);
		snprintf(certbuf, sizeof(certbuf), "%s/cert.pem", dir);
		snprintf(keybuf, sizeof(keybuf), "%s/key.pem", dir);
		cert = certbuf;
		key = keybuf;
		if (access(cert, R_OK) != 0 || access(key, R_OK) != 0) {
			if (durable_mkdirs(dir, 0700) != 0) {
				snprintf(err, errlen, "%s: %s", dir, strerror(errno));
				return NULL;
			}
			if (tls_generate_selfsigned(cert, key, hostname, err, errlen) != 0)
				return NULL;
		}
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_errstr(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		tls_errstr(err, errlen, cert);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		tls_errstr(err, errlen, key);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *
tls_client_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}
