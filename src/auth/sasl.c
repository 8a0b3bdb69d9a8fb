/*
 * sasl: PLAIN and LOGIN on the server side (see sasl.h). Each mechanism is
 * a step function over decoded data; base64 is decoded strictly (canonical
 * padding, no whitespace, no stray bits) so two spellings of one credential
 * never reach auth_check.
 * Public: sasl_mech_known, sasl_mech_list, sasl_new, sasl_step, sasl_user,
 * sasl_password, sasl_free.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "auth/sasl.h"
#include "util/xalloc.h"

#define SASL_DATA_MAX	1024
/* Base64 of SASL_DATA_MAX bytes: anything longer is refused undecoded. */
#define SASL_B64_MAX	(4 * ((SASL_DATA_MAX + 2) / 3))

enum sasl_mech { SASL_PLAIN, SASL_LOGIN };

enum sasl_state {
	SASL_ST_START,		/* nothing received yet: the next input may be an initial response */
	SASL_ST_PLAIN,		/* PLAIN: waiting for the message */
	SASL_ST_LOGIN_USER,	/* LOGIN: "Username:" sent */
	SASL_ST_LOGIN_PASS,	/* LOGIN: "Password:" sent */
	SASL_ST_OVER		/* done or failed: nothing more is accepted */
};

struct sasl {
	enum sasl_mech mech;
	enum sasl_state state;
	char *user;
	char *password;
	size_t password_len;
	unsigned char data[SASL_DATA_MAX + 3];	/* the last decoded input (whole base64 groups,
						 * padding included), wiped after use */
};

static const char sasl_chal_user[] = "VXNlcm5hbWU6";	/* "Username:" */
static const char sasl_chal_pass[] = "UGFzc3dvcmQ6";	/* "Password:" */

int
sasl_mech_known(const char *mech)
{
	return mech != NULL && (strcasecmp(mech, "PLAIN") == 0 || strcasecmp(mech, "LOGIN") == 0);
}

const char *
sasl_mech_list(void)
{
	return "PLAIN LOGIN";
}

struct sasl *
sasl_new(const char *mech)
{
	struct sasl *s;

	if (!sasl_mech_known(mech))
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->mech = strcasecmp(mech, "PLAIN") == 0 ? SASL_PLAIN : SASL_LOGIN;
	s->state = SASL_ST_START;
	return s;
}

static int
sasl_b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

static int
sasl_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : 63;
}

/* Strict RFC 4648 decoding of in into out (NUL-terminated, at most
 * outmax bytes of data): a multiple of four characters, '=' only as the
 * last one or two, and the bits padding drops zero. EVP_DecodeBlock alone
 * would accept stray bits and count padding as NUL bytes. Returns the
 * decoded length or -1. */
int
sasl_b64_decode_buf(const char *in, unsigned char *out, size_t outmax)
{
	size_t len = strlen(in), pad = 0;
	int n;

	if (len == 0)
		return 0;
	/* EVP_DecodeBlock writes whole groups, padding included: out has
	 * room for outmax + 3 bytes */
	if (len % 4 != 0 || len / 4 * 3 > outmax + 2 || outmax > INT_MAX / 2)
		return -1;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++)
		if (!sasl_b64_char((unsigned char)in[i]))
			return -1;
	/* The last data character's unused low bits must be zero. */
	if (pad == 1 && (sasl_b64_value((unsigned char)in[len - 2]) & 0x3) != 0)
		return -1;
	if (pad == 2 && (sasl_b64_value((unsigned char)in[len - 3]) & 0xf) != 0)
		return -1;
	n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0)
		return -1;
	n -= (int)pad;
	if ((size_t)n > outmax)
		return -1;
	out[n] = '\0';
	return n;
}

static int
sasl_b64_decode(struct sasl *s, const char *in)
{
	if (strlen(in) > SASL_B64_MAX)
		return -1;
	return sasl_b64_decode_buf(in, s->data, SASL_DATA_MAX);
}

static void
sasl_set_password(struct sasl *s, const unsigned char *p, size_t len)
{
	if (s->password != NULL) {
		OPENSSL_cleanse(s->password, s->password_len);
		free(s->password);
	}
	s->password = xmalloc(len + 1);
	memcpy(s->password, p, len);
	s->password[len] = '\0';
	s->password_len = len;
}

/* RFC 4616: [authzid] NUL authcid NUL passwd, exactly two NULs, neither
 * authcid nor passwd empty; an authzid must name the login itself. */
static enum sasl_status
sasl_plain(struct sasl *s, size_t n, const char **error_r)
{
	const char *zid = (const char *)s->data, *cid, *pw;
	const char *nul1 = memchr(s->data, '\0', n), *nul2;

	if (nul1 == NULL || (size_t)(nul1 - zid) >= n) {
		*error_r = "PLAIN: no NUL separator";
		return SASL_FAIL;
	}
	cid = nul1 + 1;
	nul2 = memchr(cid, '\0', n - (size_t)(cid - zid));
	if (nul2 == NULL || (size_t)(nul2 - zid) >= n) {
		*error_r = "PLAIN: no password";
		return SASL_FAIL;
	}
	pw = nul2 + 1;
	if (memchr(pw, '\0', n - (size_t)(pw - zid)) != NULL) {
		*error_r = "PLAIN: NUL in the password";
		return SASL_FAIL;
	}
	if (*cid == '\0' || (size_t)(pw - zid) >= n) {
		*error_r = *cid == '\0' ? "PLAIN: empty user name" : "PLAIN: empty password";
		return SASL_FAIL;
	}
	if (*zid != '\0' && strcasecmp(zid, cid) != 0) {
		*error_r = "PLAIN: authorization identity differs from the login";
		return SASL_FAIL;
	}
	s->user = xstrdup(cid);
	sasl_set_password(s, (const unsigned char *)pw, n - (size_t)(pw - zid));
	return SASL_DONE;
}

/* One LOGIN answer: a user name or a password, non-empty, NUL-free. */
static enum sasl_status
sasl_login(struct sasl *s, size_t n, const char **challenge_r, const char **error_r)
{
	if (n == 0 || memchr(s->data, '\0', n) != NULL) {
		*error_r = n == 0 ? "LOGIN: empty answer" : "LOGIN: NUL in the answer";
		return SASL_FAIL;
	}
	if (s->state == SASL_ST_LOGIN_USER) {
		s->user = xstrdup((const char *)s->data);
		s->state = SASL_ST_LOGIN_PASS;
		*challenge_r = sasl_chal_pass;
		return SASL_CONTINUE;
	}
	sasl_set_password(s, s->data, n);
	return SASL_DONE;
}

static enum sasl_status
sasl_step_data(struct sasl *s, const char *in, int first, const char **challenge_r,
	       const char **error_r)
{
	int n;

	/* "=" is SASL-IR's empty initial response; later it is bad base64. */
	if (first && strcmp(in, "=") == 0)
		n = 0;
	else if ((n = sasl_b64_decode(s, in)) < 0) {
		*error_r = strlen(in) > SASL_B64_MAX ? "response too long" : "invalid base64";
		return SASL_FAIL;
	}
	if (s->mech == SASL_PLAIN)
		return sasl_plain(s, (size_t)n, error_r);
	return sasl_login(s, (size_t)n, challenge_r, error_r);
}

enum sasl_status
sasl_step(struct sasl *s, const char *in, const char **challenge_r, const char **error_r)
{
	enum sasl_status st;
	int first = s->state == SASL_ST_START;

	*challenge_r = "";
	*error_r = NULL;
	if (s->state == SASL_ST_OVER) {
		*error_r = "the exchange is over";
		return SASL_FAIL;
	}
	if (first) {
		s->state = s->mech == SASL_PLAIN ? SASL_ST_PLAIN : SASL_ST_LOGIN_USER;
		if (in == NULL) {
			*challenge_r = s->mech == SASL_PLAIN ? "" : sasl_chal_user;
			return SASL_CONTINUE;
		}
	} else if (in == NULL) {
		*error_r = "no response";
		s->state = SASL_ST_OVER;
		return SASL_FAIL;
	}
	st = sasl_step_data(s, in, first, challenge_r, error_r);
	OPENSSL_cleanse(s->data, sizeof(s->data));
	if (st != SASL_CONTINUE)
		s->state = SASL_ST_OVER;
	if (st == SASL_FAIL) {
		free(s->user);
		s->user = NULL;
	}
	return st;
}

const char *
sasl_user(const struct sasl *s)
{
	return s->state == SASL_ST_OVER && s->password != NULL ? s->user : NULL;
}

const char *
sasl_password(const struct sasl *s)
{
	return s->state == SASL_ST_OVER && s->user != NULL ? s->password : NULL;
}

void
sasl_free(struct sasl **sp)
{
	struct sasl *s = *sp;

	if (s == NULL)
		return;
	if (s->password != NULL) {
		OPENSSL_cleanse(s->password, s->password_len);
		free(s->password);
	}
	OPENSSL_cleanse(s->data, sizeof(s->data));
	free(s->user);
	free(s);
	*sp = NULL;
}
