/*
 * scram: SCRAM-SHA-256 on the server side (see scram.h). Every message is
 * kept as the client sent it: the AuthMessage both proofs sign is the
 * exact client-first-bare, server-first and client-final-without-proof.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "auth/sasl.h"
#include "auth/scram.h"
#include "util/xalloc.h"

#define SCRAM_MSG_MAX   1024     /* any message of the exchange, decoded */
#define SCRAM_KEY       SHA256_DIGEST_LENGTH
#define SCRAM_SALT_MAX  64
#define SCRAM_ITER_MIN  4096
#define SCRAM_ITER_MAX  1000000

enum scram_state { ST_FIRST, ST_SECRET, ST_FINAL, ST_OVER };

struct scram {
	enum scram_state state;
	char fixed[64];                  /* scram_set_server_nonce */
	int plus, offered;               /* scram_set_tls */
	unsigned char exporter[64], end_point[64];
	size_t exporter_len, end_point_len;
	unsigned char cbdata[64];        /* the binding the client chose */
	size_t cbdata_len;
	char *user;
	char gs2[48];                    /* "n,,", "y,," or "p=TYPE,,": what c= starts with */
	char *client_first_bare;
	char *server_first;
	char nonce[160];                 /* the client's nonce + ours */
	unsigned char stored[SCRAM_KEY], server[SCRAM_KEY];
	char out[512];                   /* the last challenge, base64 */
	unsigned char buf[SCRAM_MSG_MAX + 3];
};

struct scram *
scram_new(void)
{
	struct scram *s = xcalloc(1, sizeof(*s));

	s->state = ST_FIRST;
	return s;
}

void
scram_set_tls(struct scram *s, int plus, int offered, const unsigned char *exporter,
	      size_t exporter_len, const unsigned char *end_point, size_t end_point_len)
{
	s->plus = plus;
	s->offered = offered;
	if (exporter != NULL && exporter_len <= sizeof(s->exporter)) {
		memcpy(s->exporter, exporter, exporter_len);
		s->exporter_len = exporter_len;
	}
	if (end_point != NULL && end_point_len <= sizeof(s->end_point)) {
		memcpy(s->end_point, end_point, end_point_len);
		s->end_point_len = end_point_len;
	}
}

void
scram_set_server_nonce(struct scram *s, const char *ours)
{
	snprintf(s->fixed, sizeof(s->fixed), "%s", ours);
}

const char *
scram_user(const struct scram *s)
{
	return s->user;
}

void
scram_free(struct scram **sp)
{
	struct scram *s = *sp;

	if (s == NULL)
		return;
	free(s->user);
	free(s->client_first_bare);
	free(s->server_first);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
	*sp = NULL;
}

static enum scram_status
scram_fail(struct scram *s, const char *why, const char **error_r)
{
	s->state = ST_OVER;
	*error_r = why;
	return SCRAM_FAIL;
}

/* The message of this turn, decoded into s->buf: NULL (the exchange
 * over, *error_r set) when it is out of turn, not base64, empty or has a
 * NUL. */
static const char *
scram_message(struct scram *s, enum scram_state want, const char *in, const char **error_r)
{
	int n;

	*error_r = NULL;
	if (s->state != want) {
		scram_fail(s, "SCRAM: out of turn", error_r);
		return NULL;
	}
	if (in == NULL || (n = sasl_b64_decode_buf(in, s->buf, SCRAM_MSG_MAX)) <= 0) {
		scram_fail(s, "SCRAM: invalid base64", error_r);
		return NULL;
	}
	if (memchr(s->buf, '\0', (size_t)n) != NULL) {
		scram_fail(s, "SCRAM: NUL in the message", error_r);
		return NULL;
	}
	return (const char *)s->buf;
}

/* RFC 5802 saslname: "=2C" is ',', "=3D" is '=', no other '=' or ','. */
static char *
scram_saslname(const char *p, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == ',') {
			free(out);
			return NULL;
		}
		if (p[i] == '=') {
			if (i + 3 <= n && strncmp(p + i, "=2C", 3) == 0)
				*o++ = ',';
			else if (i + 3 <= n && strncmp(p + i, "=3D", 3) == 0)
				*o++ = '=';
			else {
				free(out);
				return NULL;
			}
			i += 2;
			continue;
		}
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f) {
			free(out);
			return NULL;
		}
		*o++ = p[i];
	}
	*o = '\0';
	if (o == out) {
		free(out);
		return NULL;
	}
	return out;
}

/* A nonce: printable ASCII without ','. */
static int
scram_nonce_ok(const char *p, size_t n)
{
	if (n == 0 || n > 100)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return 0;
	return 1;
}

enum scram_status
scram_client_first(struct scram *s, const char *in, const char **error_r)
{
	const char *m, *bare, *nonce, *end;

	if ((m = scram_message(s, ST_FIRST, in, error_r)) == NULL)
		return SCRAM_FAIL;
	/* gs2-header: the channel binding flag, then an authzid */
	if (m[0] == 'p' && m[1] == '=') {
		size_t tl = strcspn(m + 2, ",");

		if (!s->plus)
			return scram_fail(s, "SCRAM: channel binding needs SCRAM-SHA-256-PLUS", error_r);
		if (tl == 12 && strncmp(m + 2, "tls-exporter", 12) == 0 && s->exporter_len > 0) {
			memcpy(s->cbdata, s->exporter, s->exporter_len);
			s->cbdata_len = s->exporter_len;
		} else if (tl == 20 && strncmp(m + 2, "tls-server-end-point", 20) == 0 &&
			   s->end_point_len > 0) {
			memcpy(s->cbdata, s->end_point, s->end_point_len);
			s->cbdata_len = s->end_point_len;
		} else {
			return scram_fail(s, "SCRAM: unsupported channel binding type", error_r);
		}
		bare = m + 2 + tl;
	} else if ((m[0] == 'n' || m[0] == 'y') && m[1] == ',') {
		if (s->plus)
			return scram_fail(s, "SCRAM: SCRAM-SHA-256-PLUS needs channel binding", error_r);
		if (m[0] == 'y' && s->offered)   /* RFC 5802 6: a downgrade */
			return scram_fail(s, "SCRAM: channel binding was offered", error_r);
		bare = m + 1;
	} else {
		return scram_fail(s, "SCRAM: bad gs2 header", error_r);
	}
	/* bare is at the ',' before the authzid */
	if (bare[1] == 'a' && bare[2] == '=')
		return scram_fail(s, "SCRAM: no authorization identity other than the login",
				  error_r);
	if (bare[0] != ',' || bare[1] != ',')
		return scram_fail(s, "SCRAM: bad gs2 header", error_r);
	snprintf(s->gs2, sizeof(s->gs2), "%.*s", (int)(bare + 2 - m), m);
	bare += 2;
	if (strncmp(bare, "n=", 2) != 0 || (end = strchr(bare + 2, ',')) == NULL)
		return scram_fail(s, "SCRAM: no user name", error_r);
	if ((s->user = scram_saslname(bare + 2, (size_t)(end - bare - 2))) == NULL)
		return scram_fail(s, "SCRAM: bad user name", error_r);
	if (strncmp(end + 1, "r=", 2) != 0)
		return scram_fail(s, "SCRAM: no nonce", error_r);
	nonce = end + 3;
	end = strchr(nonce, ',');   /* extensions may follow; none is required */
	if (!scram_nonce_ok(nonce, end ? (size_t)(end - nonce) : strlen(nonce)))
		return scram_fail(s, "SCRAM: bad nonce", error_r);
	snprintf(s->nonce, sizeof(s->nonce), "%.*s", end ? (int)(end - nonce) : (int)strlen(nonce),
		 nonce);
	s->client_first_bare = xstrdup(bare);
	s->state = ST_SECRET;
	OPENSSL_cleanse(s->buf, sizeof(s->buf));
	return SCRAM_NEED_SECRET;
}

/* "SCRAM-SHA-256:ITER:SALT:STORED:SERVER" into its parts; 0 or -1. */
static int
scram_parse_secret(struct scram *s, const char *secret, unsigned *iter_r, char *salt_b64,
		   size_t salt_len)
{
	char copy[512], *f[5], *save = NULL, *p;
	unsigned char key[SCRAM_KEY + 3];
	int n = 0;

	if (secret == NULL || strlen(secret) >= sizeof(copy))
		return -1;
	strcpy(copy, secret);
	for (p = strtok_r(copy, ":", &save); p != NULL && n < 5; p = strtok_r(NULL, ":", &save))
		f[n++] = p;
	if (n != 5 || p != NULL || strcmp(f[0], SCRAM_MECH) != 0)
		return -1;
	*iter_r = (unsigned)strtoul(f[1], NULL, 10);
	if (*iter_r < SCRAM_ITER_MIN || *iter_r > SCRAM_ITER_MAX || strlen(f[2]) >= salt_len)
		return -1;
	strcpy(salt_b64, f[2]);
	if (sasl_b64_decode_buf(f[3], key, SCRAM_KEY) != SCRAM_KEY)
		return -1;
	memcpy(s->stored, key, SCRAM_KEY);
	if (sasl_b64_decode_buf(f[4], key, SCRAM_KEY) != SCRAM_KEY)
		return -1;
	memcpy(s->server, key, SCRAM_KEY);
	OPENSSL_cleanse(copy, sizeof(copy));
	return 0;
}

/* For a user with no secret: keys and salt from the server's key and the
 * name, the same each time, which no password matches. */
static void
scram_fake_secret(struct scram *s, const unsigned char *fake_key, unsigned *iter_r,
		  char *salt_b64)
{
	unsigned char mac[SCRAM_KEY];
	unsigned int len;
	char label[400];

	snprintf(label, sizeof(label), "salt\n%s", s->user);
	HMAC(EVP_sha256(), fake_key, SCRAM_FAKE_KEY_LEN, (unsigned char *)label, strlen(label),
	     mac, &len);
	EVP_EncodeBlock((unsigned char *)salt_b64, mac, 16);
	snprintf(label, sizeof(label), "stored\n%s", s->user);
	HMAC(EVP_sha256(), fake_key, SCRAM_FAKE_KEY_LEN, (unsigned char *)label, strlen(label),
	     s->stored, &len);
	snprintf(label, sizeof(label), "server\n%s", s->user);
	HMAC(EVP_sha256(), fake_key, SCRAM_FAKE_KEY_LEN, (unsigned char *)label, strlen(label),
	     s->server, &len);
	*iter_r = SCRAM_ITER_MIN;
}

enum scram_status
scram_server_first(struct scram *s, const char *secret, const unsigned char *fake_key,
		   const char **challenge_r, const char **error_r)
{
	unsigned char rnd[18];
	char ours[32], salt[100];
	unsigned iter;
	size_t cn;

	*error_r = NULL;
	if (s->state != ST_SECRET)
		return scram_fail(s, "SCRAM: out of turn", error_r);
	if (secret == NULL || secret[0] == '\0' ||
	    scram_parse_secret(s, secret, &iter, salt, sizeof(salt)) != 0)
		scram_fake_secret(s, fake_key, &iter, salt);
	if (s->fixed[0] != '\0')
		snprintf(ours, sizeof(ours), "%s", s->fixed);
	else if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return scram_fail(s, "SCRAM: no random bytes", error_r);
	else
		EVP_EncodeBlock((unsigned char *)ours, rnd, sizeof(rnd));   /* 24 chars, no ',' */
	cn = strlen(s->nonce);
	snprintf(s->nonce + cn, sizeof(s->nonce) - cn, "%s", ours);
	s->server_first = xasprintf("r=%s,s=%s,i=%u", s->nonce, salt, iter);
	EVP_EncodeBlock((unsigned char *)s->out, (unsigned char *)s->server_first,
			(int)strlen(s->server_first));
	s->state = ST_FINAL;
	*challenge_r = s->out;
	return SCRAM_CONTINUE;
}

enum scram_status
scram_client_final(struct scram *s, const char *in, const char **challenge_r,
		   const char **error_r)
{
	unsigned char sig[SCRAM_KEY], key[SCRAM_KEY], hkey[SCRAM_KEY], proof[SCRAM_KEY + 3];
	unsigned char cbraw[128];
	char cbind[200], *auth_msg;
	size_t gl;
	const char *m, *p, *nonce, *end;
	unsigned int len;
	size_t without;
	int ok;

	*challenge_r = "";
	if ((m = scram_message(s, ST_FINAL, in, error_r)) == NULL)
		return SCRAM_FAIL;
	/* c= is the gs2 header and the binding data, base64 */
	gl = strlen(s->gs2);
	memcpy(cbraw, s->gs2, gl);
	memcpy(cbraw + gl, s->cbdata, s->cbdata_len);
	EVP_EncodeBlock((unsigned char *)cbind, cbraw, (int)(gl + s->cbdata_len));
	if (strncmp(m, "c=", 2) != 0 || (end = strchr(m, ',')) == NULL ||
	    (size_t)(end - m - 2) != strlen(cbind) || strncmp(m + 2, cbind, strlen(cbind)) != 0)
		return scram_fail(s, "SCRAM: channel binding data differ from the gs2 header", error_r);
	nonce = end + 1;
	if (strncmp(nonce, "r=", 2) != 0 || (end = strchr(nonce, ',')) == NULL ||
	    (size_t)(end - nonce - 2) != strlen(s->nonce) ||
	    strncmp(nonce + 2, s->nonce, strlen(s->nonce)) != 0)
		return scram_fail(s, "SCRAM: the nonce is not ours", error_r);
	/* the proof is the last attribute */
	if ((p = strstr(end, ",p=")) == NULL || strchr(p + 3, ',') != NULL)
		return scram_fail(s, "SCRAM: no proof", error_r);
	without = (size_t)(p - m);
	if (sasl_b64_decode_buf(p + 3, proof, SCRAM_KEY) != SCRAM_KEY)
		return scram_fail(s, "SCRAM: bad proof", error_r);
	auth_msg = xasprintf("%s,%s,%.*s", s->client_first_bare, s->server_first, (int)without, m);
	/* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) = StoredKey? */
	HMAC(EVP_sha256(), s->stored, SCRAM_KEY, (unsigned char *)auth_msg, strlen(auth_msg), sig,
	     &len);
	for (int i = 0; i < SCRAM_KEY; i++)
		key[i] = proof[i] ^ sig[i];
	SHA256(key, SCRAM_KEY, hkey);
	ok = CRYPTO_memcmp(hkey, s->stored, SCRAM_KEY) == 0;
	if (ok) {
		char v[64];

		HMAC(EVP_sha256(), s->server, SCRAM_KEY, (unsigned char *)auth_msg, strlen(auth_msg),
		     sig, &len);
		EVP_EncodeBlock((unsigned char *)v, sig, SCRAM_KEY);
		snprintf((char *)s->buf, sizeof(s->buf), "v=%s", v);
		EVP_EncodeBlock((unsigned char *)s->out, s->buf, (int)strlen((char *)s->buf));
		*challenge_r = s->out;
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(auth_msg, strlen(auth_msg));
	free(auth_msg);
	s->state = ST_OVER;
	return ok ? SCRAM_OK : SCRAM_BAD_PROOF;
}
