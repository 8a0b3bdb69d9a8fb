/*
 * tls: OpenSSL server/client contexts and the self-signed certificate a
 * fresh install starts with (see tls.h). Everything in data_dir/tls/ is
 * opened through an fd of that directory with O_NOFOLLOW: root does this
 * before the privilege drop, in a directory the service user owns.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <fcntl.h>
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

/* Written as NAME.tmp, then renamed, all inside dirfd: root writes here in
 * a data_dir the service user owns, so nothing may go through a link it
 * planted (durable_createat removes one instead of opening it). */
static int
tls_write_pem_at(int dirfd, const char *name, int mode, X509 *x, EVP_PKEY *pk)
{
	char tmp[300];
	FILE *fp;
	int fd, ok;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	if ((fd = durable_createat(dirfd, tmp, mode)) < 0)
		return -1;
	if (fchmod(fd, mode) != 0 || (fp = fdopen(fd, "w")) == NULL) {
		close(fd);
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	ok = x ? PEM_write_X509(fp, x) : PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
		ok = 0;
	fclose(fp);
	if (!ok || durable_renameat(dirfd, tmp, name) != 0) {
		unlinkat(dirfd, tmp, 0);
		return -1;
	}
	return 0;
}

/* The directory of path, opened (following links: the caller chose the
 * path), and its last component in *base_r. */
static int
tls_open_parent(const char *path, const char **base_r)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');

	durable_dirname(path, dir, sizeof(dir));
	*base_r = slash ? slash + 1 : path;
	return open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static int
tls_generate_at(int cert_dir, const char *cert_name, int key_dir, const char *key_name,
		const char *hostname, char *err, size_t errlen)
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
	if (tls_write_pem_at(key_dir, key_name, 0600, NULL, pk) != 0) {
		snprintf(err, errlen, "writing %s: %s", key_name, strerror(errno));
		goto out;
	}
	if (tls_write_pem_at(cert_dir, cert_name, 0644, x, NULL) != 0) {
		snprintf(err, errlen, "writing %s: %s", cert_name, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

int
tls_generate_selfsigned(const char *cert_path, const char *key_path, const char *hostname,
			char *err, size_t errlen)
{
	const char *cert_name, *key_name;
	int cfd = tls_open_parent(cert_path, &cert_name);
	int kfd = tls_open_parent(key_path, &key_name);
	int rc = -1;

	if (cfd < 0 || kfd < 0)
		snprintf(err, errlen, "%s: %s", cfd < 0 ? cert_path : key_path, strerror(errno));
	else
		rc = tls_generate_at(cfd, cert_name, kfd, key_name, hostname, err, errlen);
	if (cfd >= 0)
		close(cfd);
	if (kfd >= 0)
		close(kfd);
	return rc;
}

/* A regular file of dirfd, opened without following a link (O_NONBLOCK:
 * a planted FIFO must not hang the start). NULL with errno on failure. */
static FILE *
tls_fopen_at(int dirfd, const char *name)
{
	struct stat sb;
	FILE *fp;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if ((fp = fdopen(fd, "r")) == NULL)
		close(fd);
	return fp;
}

static const char *
tls_open_error(void)
{
	if (errno == ELOOP)
		return "is a symbolic link; refusing to follow it";
	if (errno == EINVAL)
		return "not a regular file";
	return strerror(errno);
}

/* The certificate (and any chain after it) and key of data_dir/tls/, read
 * through fds of that directory. */
static int
tls_use_at(SSL_CTX *ctx, int dirfd, char *err, size_t errlen)
{
	FILE *fp;
	X509 *x;
	EVP_PKEY *pk;
	int ok;

	if ((fp = tls_fopen_at(dirfd, "cert.pem")) == NULL) {
		snprintf(err, errlen, "tls/cert.pem: %s", tls_open_error());
		return -1;
	}
	x = PEM_read_X509_AUX(fp, NULL, NULL, NULL);
	ok = x != NULL && SSL_CTX_use_certificate(ctx, x) == 1;
	X509_free(x);
	while (ok && (x = PEM_read_X509(fp, NULL, NULL, NULL)) != NULL)
		if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
			X509_free(x);
			ok = 0;
		}
	fclose(fp);
	ERR_clear_error();   /* the end of the chain reads as an error */
	if (!ok) {
		tls_errstr(err, errlen, "tls/cert.pem");
		return -1;
	}
	if ((fp = tls_fopen_at(dirfd, "key.pem")) == NULL) {
		snprintf(err, errlen, "tls/key.pem: %s", tls_open_error());
		return -1;
	}
	pk = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	ok = pk != NULL && SSL_CTX_use_PrivateKey(ctx, pk) == 1 && SSL_CTX_check_private_key(ctx) == 1;
	EVP_PKEY_free(pk);
	if (!ok) {
		tls_errstr(err, errlen, "tls/key.pem");
		return -1;
	}
	return 0;
}

/* data_dir/tls/, created when absent, opened without following a link:
 * root runs this before dropping privileges, in a directory the service
 * user owns. The self-signed pair is generated when either file is absent. */
static int
tls_selfsigned_at(SSL_CTX *ctx, const char *data_dir, const char *hostname, char *err,
		  size_t errlen)
{
	struct stat sb;
	int dfd, tfd, rc = -1;

	if ((dfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", data_dir, strerror(errno));
		return -1;
	}
	tfd = durable_openat_dir(dfd, "tls", 0700);
	if (tfd < 0) {
		int saved = errno;

		if (fstatat(dfd, "tls", &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode))
			snprintf(err, errlen, "%s/tls is a symbolic link; refusing to follow it", data_dir);
		else
			snprintf(err, errlen, "%s/tls: %s", data_dir, strerror(saved));
		close(dfd);
		return -1;
	}
	close(dfd);
	if ((fstatat(tfd, "cert.pem", &sb, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) ||
	    (fstatat(tfd, "key.pem", &sb, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)) {
		if (tls_generate_at(tfd, "cert.pem", tfd, "key.pem", hostname, err, errlen) != 0)
			goto out;
	}
	rc = tls_use_at(ctx, tfd, err, errlen);
out:
	close(tfd);
	return rc;
}

SSL_CTX *
tls_server_ctx_new(const char *cert, const char *key, const char *data_dir,
		   const char *hostname, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_errstr(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (cert == NULL) {
		if (tls_selfsigned_at(ctx, data_dir, hostname, err, errlen) != 0) {
			SSL_CTX_free(ctx);
			return NULL;
		}
		return ctx;
	}
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
