/*
 * directory_passwd: the users' passwords. New ones are hashed with
 * yescrypt; stored ones may be any crypt(3) hash, bare or behind a
 * Dovecot-style "{SCHEME}" prefix, and are compared in constant time.
 *
 * Beside the hash, the SCRAM-SHA-256 secrets of the same password (salt,
 * iterations, StoredKey, ServerKey: enough to check a SCRAM proof, not to
 * log in elsewhere); an imported hash has none, and SCRAM fails for it.
 *
 * Public: directory_user_passwd, directory_user_set_hash,
 * directory_user_verify, directory_user_hash, directory_user_scram.
 * Module-internal: dir_hash, dir_scram.
 */
#include <crypt.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "directory/directory_int.h"
#include "util/xalloc.h"

#define DIR_HASH_MAX		512
#define DIR_SCRAM_ITER		4096	/* RFC 7677's minimum, what clients expect */
#define DIR_SCRAM_SALT		16

/* crypt(3) of password with setting into a fresh string, or NULL. */
static char *
dir_crypt(const char *password, const char *setting)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	char *h = crypt_rn(password, setting, cd, sizeof(*cd));
	char *out = NULL;

	if (h != NULL && h[0] != '*')
		out = xstrdup(h);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return out;
}

char *
dir_hash(struct dir_conn *c, const char *password)
{
	char *salt, *hash;

	if (password == NULL || password[0] == '\0') {
		dir_seterr(c, "empty password");
		return NULL;
	}
	if (strlen(password) >= CRYPT_MAX_PASSPHRASE_SIZE) {
		dir_seterr(c, "password longer than %d characters", CRYPT_MAX_PASSPHRASE_SIZE - 1);
		return NULL;
	}
	salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (salt == NULL) {
		dir_seterr(c, "cannot make a password salt: %s", strerror(errno));
		return NULL;
	}
	hash = dir_crypt(password, salt);
	free(salt);
	if (hash == NULL)
		dir_seterr(c, "cannot hash the password with yescrypt");
	return hash;
}

char *
dir_scram(struct dir_conn *c, const char *password)
{
	unsigned char salt[DIR_SCRAM_SALT], salted[SHA256_DIGEST_LENGTH];
	unsigned char ckey[SHA256_DIGEST_LENGTH], stored[SHA256_DIGEST_LENGTH];
	unsigned char skey[SHA256_DIGEST_LENGTH];
	char bsalt[32], bstored[48], bserver[48];
	unsigned int len;
	char *out = NULL;

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, sizeof(salt), DIR_SCRAM_ITER,
			      EVP_sha256(), sizeof(salted), salted) != 1 ||
	    HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Client Key", 10,
		 ckey, &len) == NULL ||
	    HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Server Key", 10,
		 skey, &len) == NULL) {
		dir_seterr(c, "cannot compute the SCRAM secrets of the password");
		goto out;
	}
	SHA256(ckey, sizeof(ckey), stored);
	EVP_EncodeBlock((unsigned char *)bsalt, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)bstored, stored, sizeof(stored));
	EVP_EncodeBlock((unsigned char *)bserver, skey, sizeof(skey));
	out = xasprintf("SCRAM-SHA-256:%d:%s:%s:%s", DIR_SCRAM_ITER, bsalt, bstored, bserver);
out:
	explicit_bzero(salted, sizeof(salted));
	explicit_bzero(ckey, sizeof(ckey));
	explicit_bzero(skey, sizeof(skey));
	return out;
}

static int
dir_equal(const char *a, const char *b)
{
	size_t len = strlen(a);
	volatile unsigned char diff = 0;

	if (len != strlen(b))
		return 0;
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}

/* Dovecot schemes that are crypt(3) formats under another name. */
static const char *const dir_crypt_schemes[] = {
	"CRYPT", "YESCRYPT", "SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT",
	"MD5-CRYPT", NULL
};

static int
dir_crypt_scheme(const char *name, size_t len)
{
	for (const char *const *p = dir_crypt_schemes; *p != NULL; p++)
		if (strlen(*p) == len && strncasecmp(name, *p, len) == 0)
			return 1;
	return 0;
}

static int
dir_hash_match(const char *stored, const char *password)
{
	const char *hash = stored, *end;
	char *h;
	int ok;

	if (stored[0] == '{') {
		end = strchr(stored, '}');
		/* {PLAIN} and friends: plain text is never stored here. */
		if (end == NULL || !dir_crypt_scheme(stored + 1, end - stored - 1))
			return 0;
		hash = end + 1;
	}
	/* "*" and "!" mark locked accounts in crypt(3) convention. */
	if (hash[0] == '\0' || hash[0] == '*' || hash[0] == '!')
		return 0;
	h = dir_crypt(password, hash);
	ok = h != NULL && dir_equal(h, hash);
	free(h);
	return ok;
}

/* Set the stored hash (and SCRAM secrets, or none) of an existing user. */
static int
dir_user_store(struct dir_conn *c, const char *address, const char *hash, const char *scram)
{
	char *a = dir_lowdup(address), show[80];
	int n = scram != NULL ?
		dir_run(c, "UPDATE users SET password = ?, scram = ? WHERE address = ?", 3, hash,
			scram, a) :
		dir_run(c, "UPDATE users SET password = ?, scram = NULL WHERE address = ?", 2, hash, a);

	if (n == 0)
		dir_seterr(c, "no such user %s", dir_show(a, show, sizeof(show)));
	free(a);
	return n > 0 ? 0 : -1;
}

int
directory_user_passwd(struct directory *d, const char *address, const char *password)
{
	struct dir_conn *c = dir_conn(d);
	char *hash, *scram, show[80];
	int rc;

	if (c == NULL)
		return -1;
	switch (directory_user_exists(d, address)) {
	case 0:
		dir_seterr(c, "no such user %s", dir_show(address, show, sizeof(show)));
		/* FALLTHROUGH */
	case -1:
		return -1;
	}
	if ((hash = dir_hash(c, password)) == NULL)
		return -1;
	if ((scram = dir_scram(c, password)) == NULL) {
		free(hash);
		return -1;
	}
	rc = dir_user_store(c, address, hash, scram);
	free(hash);
	free(scram);
	return rc;
}

int
directory_user_set_hash(struct directory *d, const char *address, const char *hash)
{
	struct dir_conn *c = dir_conn(d);
	size_t len = strlen(hash);

	if (c == NULL)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)hash[i] <= ' ' || hash[i] == 0x7f) {
			dir_seterr(c, "invalid password hash: space or control character");
			return -1;
		}
	}
	if (len == 0 || len >= DIR_HASH_MAX) {
		dir_seterr(c, "invalid password hash: %s", len ? "too long" : "empty");
		return -1;
	}
	return dir_user_store(c, address, hash, NULL);
}

int
directory_user_verify(struct directory *d, const char *address, const char *password)
{
	struct dir_conn *c = dir_conn(d);
	char *a, **hash;
	int n, ok = 0;

	if (c == NULL)
		return -1;
	a = dir_lowdup(address);
	n = dir_strings(c, &hash, "SELECT password FROM users WHERE address = ?", 1, a);
	free(a);
	if (n < 0)
		return -1;
	if (n > 0) {
		ok = dir_hash_match(hash[0], password);
	} else {
		if (c->dummy_hash == NULL)
			c->dummy_hash = dir_hash(c, "tandem: no such user");
		if (c->dummy_hash != NULL)
			dir_hash_match(c->dummy_hash, password);
	}
	dir_strings_free(hash);
	return ok;
}

/* One text column of the user's row (sql takes the address) and the
 * canonical address: 1, 0 for no such user, -1 on error. */
static int
dir_user_text(struct directory *d, const char *sql, const char *address, char *address_r,
	      size_t address_len, char *value_r, size_t value_len)
{
	struct dir_conn *c = dir_conn(d);
	char *a, **v;
	int n, rc = 0;

	if (c == NULL)
		return -1;
	a = dir_lowdup(address);
	n = dir_strings(c, &v, sql, 1, a);
	if (n < 0) {
		free(a);
		return -1;
	}
	if (n > 0) {
		if (strlen(a) >= address_len || strlen(v[0]) >= value_len) {
			dir_seterr(c, "password data or address longer than the buffer");
			rc = -1;
		} else {
			strcpy(address_r, a);
			strcpy(value_r, v[0]);
			rc = 1;
		}
	}
	dir_strings_free(v);
	free(a);
	return rc;
}

int
directory_user_hash(struct directory *d, const char *address, char *address_r,
		    size_t address_len, char *hash_r, size_t hash_len)
{
	return dir_user_text(d, "SELECT password FROM users WHERE address = ?", address, address_r,
			     address_len, hash_r, hash_len);
}

int
directory_user_scram(struct directory *d, const char *address, char *address_r,
		     size_t address_len, char *scram_r, size_t scram_len)
{
	return dir_user_text(d, "SELECT coalesce(scram, '') FROM users WHERE address = ?", address,
			     address_r, address_len, scram_r, scram_len);
}
