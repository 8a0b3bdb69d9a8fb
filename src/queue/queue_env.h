/*
 * queue_env: the typed, length-safe records of a queue file and its meta
 * file. A record is "<type><decimal length>:<bytes>\n"; the length, not a
 * delimiter, says where the value ends, so a CR, LF or NUL inside an address
 * can never forge a record. A queue file is "TQ1\n", the envelope records,
 * the record "M0:\n", then the message itself in CRLF form.
 * Public: queue_env_*, queue_meta_*.
 */
#ifndef TANDEM_QUEUE_ENV_H
#define TANDEM_QUEUE_ENV_H
#include <stddef.h>
#include <time.h>

#define QUEUE_ID_LEN 16
#define QUEUE_REC_MAX 8192     /* longest value of any record */
#define QUEUE_MAGIC "TQ1\n"

struct queue_env {
	char qid[QUEUE_ID_LEN + 1];
	long long arrival;          /* unix seconds */
	char *sender;               /* "" for the null sender */
	char **rcpt;
	int nrcpt;
	char *client;               /* client IP address */
	char *helo;
	char *proto;                /* SMTP, ESMTP, ESMTPS... */
	int smtputf8, body8bit;
	long long size;             /* message bytes after the envelope */
};

/* What the last attempt did for one recipient, for `queue list`. */
enum queue_rcpt_state { QR_NONE = 0, QR_DELIVERED, QR_DEFERRED, QR_BOUNCED, QR_WAITING, QR_NSTATES };

struct queue_rcpt_last {
	int state;                  /* enum queue_rcpt_state */
	long long when;             /* unix seconds */
	char *dsn;                  /* enhanced status, "4.4.1" */
	char *reason;               /* in our words */
	char *relay;                /* "host[addr]:port" it was tried at, or NULL */
	char *reply;                /* that host's reply ("550 5.1.1 ..."), or NULL */
};

struct queue_meta {
	int attempts;
	long long next_attempt;     /* unix seconds, 0 = now */
	long long last_attempt;
	char *last_error;
	unsigned char *done;        /* one flag per recipient, NULL = none done */
	int ndone;                  /* length of done */
	struct queue_rcpt_last *last;   /* per recipient, NULL = none known */
	int nlast;
};

/* Append one record to buf/len/cap (grows with xrealloc). */
void queue_rec_put(char **buf, size_t *len, size_t *cap, char type, const char *val, size_t vlen);
/* Read one record at p (n bytes). 1 ok, 0 need more bytes, -1 malformed.
 * On 1: *type_r, *val_r (points into p), *vlen_r, *used_r. */
int queue_rec_get(const char *p, size_t n, char *type_r, const char **val_r, size_t *vlen_r,
		  size_t *used_r);

/* The envelope header of a queue file, ending with the "M0:" record. */
char *queue_env_encode(const struct queue_env *env, size_t *len_r);
/* Parse a queue file's head. 1 ok (*body_off_r = offset of the message),
 * 0 incomplete, -1 malformed. env is filled (free with queue_env_clear). */
int queue_env_parse(const char *buf, size_t len, struct queue_env *env, size_t *body_off_r);
void queue_env_clear(struct queue_env *env);
void queue_env_add_rcpt(struct queue_env *env, const char *rcpt);

char *queue_meta_encode(const struct queue_meta *m, size_t *len_r);
int queue_meta_parse(const char *buf, size_t len, struct queue_meta *m);
void queue_meta_clear(struct queue_meta *m);
/* Record recipient i's last result (strings copied; NULL for none). */
void queue_meta_set_last(struct queue_meta *m, int i, enum queue_rcpt_state st, long long when,
			 const char *dsn, const char *reason, const char *relay, const char *reply);
const char *queue_rcpt_state_name(enum queue_rcpt_state st);

#endif
