/*
 * scram: the server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC
 * 5802, RFC 7677; channel binding tls-exporter of RFC 9266, or
 * tls-server-end-point of RFC 5929): client-first (gs2 "n", "y" only when
 * the server offers no -PLUS, "p=TYPE" only for -PLUS; no authzid other
 * than the login), server-first with a fresh nonce and the user's salt and
 * iterations, client-final whose proof is checked against the StoredKey,
 * and the server-final signature. The secrets come from the directory
 * (dir_scram's "SCRAM-SHA-256:ITER:SALT:STOREDKEY:SERVERKEY"); for an
 * unknown user, or one whose password was imported as a hash, a secret
 * derived from a server key stands in, so the exchange runs to its end and
 * fails there alike: the answer does not tell which users exist.
 * Public: scram_new, scram_client_first, scram_server_first,
 * scram_client_final, scram_user, scram_free.
 */
#ifndef TANDEM_SCRAM_H
#define TANDEM_SCRAM_H
#include <stddef.h>

#define SCRAM_MECH "SCRAM-SHA-256"
#define SCRAM_MECH_PLUS "SCRAM-SHA-256-PLUS"
#define SCRAM_FAKE_KEY_LEN 32

enum scram_status {
	SCRAM_NEED_SECRET,   /* client-first read: look up scram_user()'s secrets */
	SCRAM_CONTINUE,      /* send *challenge_r, feed the answer */
	SCRAM_OK,            /* the proof holds: send *challenge_r (server-final) */
	SCRAM_BAD_PROOF,     /* a wrong password: a failed login */
	SCRAM_FAIL           /* malformed, or out of turn: *error_r says why */
};

struct scram;

struct scram *scram_new(void);
/* Before client-first, over TLS: this is the -PLUS mechanism (plus), the
 * server offers -PLUS (offered: a "y" client is then a downgrade), and the
 * data of each binding type (NULL/0 when the connection has none). */
void scram_set_tls(struct scram *s, int plus, int offered, const unsigned char *exporter,
		   size_t exporter_len, const unsigned char *end_point, size_t end_point_len);
/* in: the base64 client-first-message (the initial response or the answer
 * to an empty challenge). */
enum scram_status scram_client_first(struct scram *s, const char *in, const char **error_r);
/* secret: the user's, or NULL / "" when there is none; fake_key: the
 * server's key for the stand-in. SCRAM_CONTINUE with the base64
 * server-first-message in *challenge_r, or SCRAM_FAIL. */
enum scram_status scram_server_first(struct scram *s, const char *secret,
				     const unsigned char *fake_key, const char **challenge_r,
				     const char **error_r);
/* in: the base64 client-final-message. */
enum scram_status scram_client_final(struct scram *s, const char *in, const char **challenge_r,
				     const char **error_r);
/* The login named in client-first (NULL before). */
const char *scram_user(const struct scram *s);
/* Wipes the keys. */
void scram_free(struct scram **sp);
/* Tests only: the server's part of the nonce, instead of a random one. */
void scram_set_server_nonce(struct scram *s, const char *ours);

#endif
