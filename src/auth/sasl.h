/*
 * sasl: the server side of SASL mechanisms, independent of the protocol
 * that frames them (IMAP AUTHENTICATE, POP3 AUTH, SMTP AUTH all send
 * base64 lines; "*" to cancel is the protocol's business). PLAIN (RFC
 * 4616) and LOGIN (draft-murchison-sasl-login) gather an authentication
 * identity and a password for auth_check; an authorization identity other
 * than the login itself is refused (no proxy logins). SCRAM comes with
 * submission.
 * Public: sasl_mech_known, sasl_mech_list, sasl_new, sasl_step,
 * sasl_user, sasl_password, sasl_free.
 */
#ifndef TANDEM_SASL_H
#define TANDEM_SASL_H
#include <stddef.h>

struct sasl;

enum sasl_status {
	SASL_CONTINUE,    /* send *challenge_r (base64, may be "") and feed the answer */
	SASL_DONE,        /* sasl_user and sasl_password are set: check them */
	SASL_FAIL         /* malformed: *error_r says why; the exchange is over */
};

/* "PLAIN", "LOGIN" (case-insensitive). */
int sasl_mech_known(const char *mech);
/* "PLAIN LOGIN": for CAPABILITY / CAPA / EHLO. */
const char *sasl_mech_list(void);

struct sasl *sasl_new(const char *mech);
/* in: the client's base64 line; NULL when the client sent no initial
 * response; "=" is an empty initial response (SASL-IR, RFC 4959). The
 * returned challenge stays valid until the next call. Decoded data over
 * 1024 bytes, NULs where none belong, bad base64: SASL_FAIL. */
enum sasl_status sasl_step(struct sasl *s, const char *in, const char **challenge_r,
			   const char **error_r);
const char *sasl_user(const struct sasl *s);
const char *sasl_password(const struct sasl *s);
/* Wipes the password. */
void sasl_free(struct sasl **sp);

/* Strict base64 (RFC 4648: canonical padding, no whitespace, no stray
 * bits) of in into out, which has room for outmax + 3 bytes; the data
 * (at most outmax bytes) comes out NUL-terminated. Its length, or -1. */
int sasl_b64_decode_buf(const char *in, unsigned char *out, size_t outmax);

#endif
