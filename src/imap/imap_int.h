/*
 * imap_int: what the files of the IMAP server share (private to src/imap/):
 * the server and session structs, the command row, and the helpers every
 * handler uses — replies, mailbox names on the wire, the session's map of
 * sequence numbers to UIDs and its synchronisation with the store, worker
 * jobs.
 */
#ifndef TANDEM_IMAP_INT_H
#define TANDEM_IMAP_INT_H
#include <stddef.h>
#include <stdint.h>

#include "imap/imap.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"
#include "util/worker.h"

struct event;
struct sasl;
struct store_account;
struct store_append;
struct store_folder;
struct store_watch;
struct imap_session;

#define IMAP_MAX_LINE 65536          /* a command line outside literals */
#define IMAP_MAX_ARGS 10000
#define IMAP_MAX_DEPTH 32            /* parenthesis nesting */
#define IMAP_LITERAL_BUFFERED (1024 * 1024)   /* a literal that is not an APPENDed message */
#define IMAP_LITERAL_PREAUTH 8192       /* any literal before login */
#define IMAP_PREAUTH_TIMEOUT 60
#define IMAP_PREAUTH_LIFE 120    /* the whole time a client has to log in */
#define IMAP_STREAM_MIN (256 * 1024)    /* a message larger goes out in pieces */
#define IMAP_CHUNK 500               /* messages per loop turn in FETCH, SEARCH */

enum imap_state { IMAP_NOAUTH, IMAP_AUTH, IMAP_SELECTED, IMAP_LOGOUT };

/* Row flags: the states a command is allowed in, and how it runs. */
enum {
	IMAP_F_NOAUTH = 1 << 0,      /* before login */
	IMAP_F_AUTH = 1 << 1,        /* logged in, nothing selected */
	IMAP_F_SELECTED = 1 << 2,    /* a folder selected */
	IMAP_F_UID = 1 << 3,         /* has a UID variant */
	IMAP_F_NOEXPUNGE = 1 << 4,   /* no EXPUNGE responses (RFC 3501 §7.4.1) unless UID */
};
#define IMAP_F_ANY (IMAP_F_NOAUTH | IMAP_F_AUTH | IMAP_F_SELECTED)
#define IMAP_F_LOGGED (IMAP_F_AUTH | IMAP_F_SELECTED)

typedef void imap_cmd_fn(struct imap_session *s, const struct imap_arg *args, size_t nargs);

struct imap_cmd {
	const char *name;
	imap_cmd_fn *fn;
	int flags;
};

struct imap_server {
	struct imap_deps d;
	struct imap_server *next;         /* every IMAP server of the process */
	struct imap_session *sessions;
	unsigned nsessions;
	int stopping;
};

/* An APPEND whose message literal streams into the store. */
struct imap_append {
	struct store_append *w;
	uint64_t left;           /* literal bytes still to come */
	uint64_t size;
	int failed;              /* a write failed: the commit is refused */
	long long quota;
};

struct imap_session {
	struct imap_server *srv;
	struct imap_session *next, *prev;
	struct conn *c;
	struct imap_parser *parser;
	char id[16];
	char client[64];
	enum imap_state state;
	unsigned tls : 1, busy : 1, closing : 1, dead : 1, readonly : 1, uid : 1;
	unsigned idling : 1, logged : 1, in_auth : 1;
	/* the command in progress */
	char *tag;
	const struct imap_cmd *cmd;
	/* a command that runs over several turns or reads lines itself:
	 * returns 1 once it has answered, 0 to be called again */
	int (*cont)(struct imap_session *s);
	void *op;
	void (*op_free)(void *op);
	struct event *yield_ev, *idle_ev;
	struct sasl *sasl;
	char *sasl_mech;
	struct imap_append *app;
	/* logged in */
	char *user;
	struct store_account *acct;
	struct store_watch *watch;
	/* selected */
	struct store_folder *folder;
	char *folder_name;        /* UTF-8 */
	const struct store_uidmap *map;   /* the view: shared with other sessions */
	const uint32_t *uids;     /* map's: sequence number n is uids[n - 1] */
	uint32_t nuids;
	uint32_t announced;       /* EXISTS the client has heard */
	int view_stale;           /* expunges wait for a command that may tell them */
	uint32_t uidvalidity;
	uint32_t recent_lo;       /* UIDs from here on are \Recent to us (0: none) */
	uint64_t modseq;          /* the folder's MODSEQ we have reported up to */
	int synced;               /* this command has synced (1) and told expunges (2) */
	/* counts for the logout line */
	unsigned bad_in_row;
	unsigned ncommands, nfetched, nappended, nexpunged, nstored, ncopied;
};

static inline const struct config *
imap_cf(const struct imap_session *s)
{
	return *s->srv->d.cf;
}

static inline SSL_CTX *
imap_tls(const struct imap_session *s)
{
	return *s->srv->d.tls;
}

/* imap_server.c: the first of the process's IMAP servers (imap, imaps) */
struct imap_server *imap_server_first(void);

/* imap_session.c */
void imap_session_start(struct imap_server *srv, struct conn *c, int over);
void imap_session_kill(struct imap_session *s, const char *last);
void imap_session_process(struct imap_session *s);
void imap_session_bad(struct imap_session *s);
void imap_printf(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The tagged answer that ends the command (OK and NO first send what
 * changed in the selected folder). */
void imap_done(struct imap_session *s, const char *status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Call s->cont again on a later turn of the loop. */
void imap_yield(struct imap_session *s);
/* Blocking work: pause the connection, run work on a worker, then done on
 * the loop; done calls imap_job_resume first, which is 1 when the session
 * went away meanwhile (then it frees its job and returns). */
void imap_job(struct imap_session *s, worker_fn *work, worker_fn *done, void *arg);
int imap_job_resume(struct imap_session *s);
/* A string for the client: atom-safe quoted, or a literal. */
void imap_write_string(struct imap_session *s, const char *str, size_t len);
void imap_write_nstring(struct imap_session *s, const char *str);
void imap_write_mailbox(struct imap_session *s, const char *utf8);
/* Mailbox argument (mUTF-7 on the wire) to the store's UTF-8 name, checked:
 * a malloc'd name, or NULL after answering NO itself. */
char *imap_mailbox_arg(struct imap_session *s, const struct imap_arg *a);
char *imap_mailbox_str(struct imap_session *s, const char *wire);
/* The quota of the logged-in user in bytes (0: none). */
long long imap_quota(struct imap_session *s);
const char *imap_capabilities(struct imap_session *s);

/* imap_sync.c: the session's view of the selected folder */
int imap_select_load(struct imap_session *s, const char **error_r);
void imap_unselect(struct imap_session *s);
uint32_t imap_seq_of(const struct imap_session *s, uint32_t uid);   /* 0: not in the map */
/* Send EXISTS / EXPUNGE / FETCH FLAGS for what changed since we last looked.
 * skip (may be NULL) names UIDs whose flag changes the command reported
 * itself. */
void imap_sync(struct imap_session *s, int allow_expunge,
	       int (*skip)(uint32_t uid, void *arg), void *skip_arg);
/* The UID ranges of a sequence set (s->uid: of a UID set) that exist in
 * the map; -1 after answering BAD. */
int imap_set_arg(struct imap_session *s, const struct imap_arg *a, struct imap_seqset *uids_r);
int imap_set_parse(struct imap_session *s, const char *str, int uid, int clamp,
		   struct imap_seqset *uids_r);

/* imap_cmd.c */
void imap_cmd_dispatch(struct imap_session *s);
/* Flags: "(\Seen kw)" from the wire; -1 after answering BAD. */
int imap_flags_arg(struct imap_session *s, const struct imap_arg *a, unsigned *flags_r,
		   char **keywords_r);

/* imap_cmd_folder.c: " \\Sent ..." for LIST */
void imap_special_use_names(unsigned su, char *buf, size_t len);

/* handlers */
imap_cmd_fn imap_cmd_capability, imap_cmd_noop, imap_cmd_logout, imap_cmd_starttls,
	imap_cmd_login, imap_cmd_authenticate, imap_cmd_id, imap_cmd_enable, imap_cmd_namespace;
imap_cmd_fn imap_cmd_select, imap_cmd_examine, imap_cmd_create, imap_cmd_delete,
	imap_cmd_rename, imap_cmd_subscribe, imap_cmd_unsubscribe, imap_cmd_status,
	imap_cmd_getquota, imap_cmd_getquotaroot, imap_cmd_setquota;
imap_cmd_fn imap_cmd_list, imap_cmd_lsub;
imap_cmd_fn imap_cmd_append;
imap_cmd_fn imap_cmd_fetch;
imap_cmd_fn imap_cmd_search;
imap_cmd_fn imap_cmd_store, imap_cmd_copy, imap_cmd_move, imap_cmd_expunge, imap_cmd_close,
	imap_cmd_unselect, imap_cmd_check;
imap_cmd_fn imap_cmd_idle;
/* APPEND's message literal: decide before any "+" (imap_cmd_append.c). */
void imap_literal_refuse(struct imap_session *s, uint64_t size, int sync, const char *text);
void imap_append_literal(struct imap_session *s, uint64_t size, int sync);
void imap_append_stream(struct imap_session *s);
void imap_append_free(struct imap_session *s);
/* IDLE (imap_idle.c) */
void imap_idle_stop(struct imap_session *s);

#endif
