/*
 * store: the mailbox store that local delivery, POP3, IMAP and the webmail
 * share. Each account (a user's address) is a Maildir++ tree under
 * data_dir/mail/<domain>/<local>/ (see maildir_path): INBOX is the root's
 * cur/new/tmp, a folder "a/b" is the directory ".a.b" (names on disk are
 * encoded so that '.', '/', '%' and controls inside a name never make a
 * path; clients see '/' as the separator and an empty personal namespace).
 * The message files stay plain Maildir files with LF line ends, readable by
 * any Maildir tool; their flags are mirrored in the ":2,FLAGS" suffix.
 *
 * Beside the files, one SQLite index per account (index.db in the account
 * directory, WAL): per folder UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and the
 * subscription; per message UID, file name, flags, keywords, MODSEQ, the
 * queue id it was delivered under, RFC822.SIZE (CRLF octets),
 * INTERNALDATE, and what IMAP serves without opening the file: ENVELOPE,
 * BODY, BODYSTRUCTURE (see store_mime.h) and the raw header block; expunge
 * tombstones (UID, MODSEQ) kept for [mailbox] expunged_retention. The index
 * is the authority for UIDs and flags; files found in a Maildir that the
 * index does not know (a migration, another program) get the next UIDs at
 * the folder's next open, files the index knows but which vanished are
 * expunged there. UIDs are never reused; UIDVALIDITY changes only when a
 * folder is deleted and created again.
 *
 * Every change is crash safe: a message file is written and fsync'd in
 * tmp/ before it is linked into new/ or cur/, and its index row is
 * committed after; an open reconciles the two, so a kill -9 at any moment
 * leaves no message lost, duplicated or renumbered.
 *
 * Threads: a struct store is shared by every thread. A struct
 * store_account (and its folders) is used by one thread at a time; the
 * event loop shares one handle per account among its sessions
 * (store_account_open counts references), and workers open their own.
 * Changes made anywhere (delivery on a worker, another session, another
 * process such as `tandem mailbox repair`) reach watchers on the loop
 * through store_watch; a session learns what changed from MODSEQs
 * (store_changes), as CONDSTORE/QRESYNC will.
 *
 * Public: store_new, store_free, store_account_open, store_account_close,
 * store_account_address, store_usage, store_account_remove, store_deliver,
 * store_folder_name_check, store_folder_list, store_folder_create,
 * store_folder_delete, store_folder_rename, store_folder_subscribe,
 * store_folder_subscriptions,
 * store_folder_status, store_folder_open, store_folder_close, store_folder_fresh,
 * store_folder_info, store_folder_take_recent, store_fetch,
 * store_uidmap, store_uidmap_release, store_msg_open, store_flags, store_expunge, store_copy, store_changes,
 * store_append_begin, store_append_write, store_append_commit,
 * store_append_abort, store_watch, store_unwatch, store_notify,
 * store_verify, store_flag_names.
 */
#ifndef TANDEM_STORE_H
#define TANDEM_STORE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct event_base;
struct worker_pool;
struct store;
struct store_account;
struct store_folder;
struct store_append;
struct store_watch;

/* System flags (IMAP's \Seen ... \Draft); keywords are separate strings. */
enum {
	STORE_F_SEEN = 1 << 0,
	STORE_F_ANSWERED = 1 << 1,
	STORE_F_FLAGGED = 1 << 2,
	STORE_F_DELETED = 1 << 3,
	STORE_F_DRAFT = 1 << 4,
};
#define STORE_F_ALL 0x1f

/* Special-use attributes (RFC 6154), a bit each. */
enum {
	STORE_SU_DRAFTS = 1 << 0,
	STORE_SU_SENT = 1 << 1,
	STORE_SU_TRASH = 1 << 2,
	STORE_SU_JUNK = 1 << 3,
	STORE_SU_ARCHIVE = 1 << 4,
	STORE_SU_ALL = 1 << 5,
	STORE_SU_FLAGGED = 1 << 6,
};

/* Results where the caller must tell cases apart; other failures are -1
 * with *error_r (a sentence for the user or the log). */
enum {
	STORE_OK = 0,
	STORE_DUPLICATE = 1,      /* store_deliver: that queue id is already there */
	STORE_ERROR = -1,         /* I/O or database: worth a retry (4xx / NO) */
	STORE_OVER_QUOTA = -2,    /* this message would exceed the quota (4.2.2) */
	STORE_TOO_BIG = -3,       /* larger than the whole quota (5.2.2) */
	STORE_NO_FOLDER = -4,     /* no such folder (IMAP [TRYCREATE] / [NONEXISTENT]) */
	STORE_EXISTS = -5,        /* folder exists already ([ALREADYEXISTS]) */
	STORE_BAD_NAME = -6,      /* a folder name that is not allowed ([CANNOT]) */
	STORE_MODIFIED = -7,      /* store_flags: UNCHANGEDSINCE failed for some */
};

struct store_settings {
	const char *data_dir;
	long long expunged_retention;   /* seconds; tombstones older are purged */
	/* where a folder whose files may hold what its index lacks is
	 * checked in the background (NULL: at once, by whoever opens it) */
	struct worker_pool *pool;
};

/* base: the loop that store_watch callbacks run on (NULL for the CLI:
 * no watchers). NULL with *error_r on failure. */
struct store *store_new(const struct store_settings *set, struct event_base *base,
			const char **error_r);
void store_free(struct store **sp);

/* --- accounts ---------------------------------------------------------- */

/* Opens (creating the Maildir, the index and the default folders Drafts,
 * Sent, Trash, Junk and Archive, subscribed, with their special use, on
 * first use) the account of address, a canonical address the directory
 * knows. On the loop thread the same handle is shared and reference
 * counted; elsewhere each call opens a new one. */
struct store_account *store_account_open(struct store *s, const char *address,
					 const char **error_r);
void store_account_close(struct store_account **ap);
const char *store_account_address(const struct store_account *a);
/* Bytes (RFC822.SIZE sum) and messages over every folder. */
int store_usage(struct store_account *a, long long *bytes_r, long long *messages_r);
/* `tandem user del`: moves the account's directory out of the way to
 * data_dir/mail/.removed/<domain>/<local>.<unix time> (so a new user of
 * the same name starts empty) and writes that path to moved_r. 0 (nothing
 * to move: moved_r ""), or -1. Only with no handle open. */
int store_account_remove(struct store *s, const char *address, char *moved_r, size_t len);

/* Local delivery into folder (NULL: INBOX) of address's account: copies len
 * bytes from src_fd at off (CRLF turned into LF) after prefix (header
 * lines, LF, added on top), indexes the message and records qid, so a
 * delivery repeated after a crash returns STORE_DUPLICATE whatever has
 * happened to the file since (flags renamed it, it moved to cur/).
 * quota: bytes, 0 for none; checked against store_usage. Returns STORE_OK,
 * STORE_DUPLICATE, STORE_OVER_QUOTA, STORE_TOO_BIG, STORE_ERROR. *uid_r
 * (may be NULL) gets the new UID. Blocking: run it on a worker. Watchers
 * of the account are told. */
int store_deliver(struct store *s, const char *address, const char *folder, const char *qid,
		  const char *prefix, int src_fd, off_t off, long long len, long long quota,
		  uint32_t *uid_r, const char **error_r);

/* --- folders ----------------------------------------------------------- */

/* Is name (UTF-8, '/' separated) a folder name the store accepts? Refuses
 * empty names and components, ".", "..", a leading or trailing '/', NUL and
 * other controls, more than 255 bytes or 16 levels, invalid UTF-8. "INBOX"
 * in any case means INBOX; "INBOX/x" is a folder below it. 0, or
 * STORE_BAD_NAME with *error_r. */
int store_folder_name_check(const char *name, const char **error_r);

struct store_folder_entry {
	const char *name;        /* UTF-8, '/' separated; "INBOX" for the inbox */
	unsigned special_use;    /* STORE_SU_* */
	int subscribed;
	int has_children;
	int noselect;            /* a parent that only exists by its children */
};

/* Every folder (INBOX first, then by name), or -1. fn returning non-zero
 * stops the walk with that value. */
int store_folder_list(struct store_account *a,
		      int (*fn)(const struct store_folder_entry *e, void *arg), void *arg);
/* Create (parents as needed, not selectable until created themselves).
 * special_use: 0 or STORE_SU_* (CREATE-SPECIAL-USE). STORE_EXISTS,
 * STORE_BAD_NAME, -1. */
int store_folder_create(struct store_account *a, const char *name, unsigned special_use,
			const char **error_r);
/* Deletes the folder and its messages (INBOX cannot be deleted; a folder
 * with children becomes \Noselect, as RFC 3501 says). */
int store_folder_delete(struct store_account *a, const char *name, const char **error_r);
/* Renames a folder and its children; renaming INBOX moves its messages
 * into a new folder and leaves INBOX empty (RFC 3501). The folder keeps
 * its UIDVALIDITY and UIDs. */
int store_folder_rename(struct store_account *a, const char *from, const char *to,
			const char **error_r);
/* Subscriptions may name folders that do not exist (RFC 3501 §6.3.6). */
int store_folder_subscribe(struct store_account *a, const char *name, int on,
			   const char **error_r);
/* Every subscribed name, existing or not, in name order (LSUB, LIST
 * (SUBSCRIBED) with \NonExistent), or -1; fn's non-zero return stops. */
int store_folder_subscriptions(struct store_account *a, int (*fn)(const char *name, void *arg),
			       void *arg);

struct store_folder_info {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	uint32_t messages;
	uint32_t unseen;          /* without \Seen */
	uint32_t recent;          /* UID >= the folder's first recent UID */
	uint32_t first_unseen_uid;   /* 0: none */
	long long size;           /* bytes, for STATUS SIZE */
};

/* STATUS without opening (files added from elsewhere are picked up). */
int store_folder_status(struct store_account *a, const char *name,
			struct store_folder_info *info_r, const char **error_r);

/* Open for reading and changing: reconciles index and files first (new
 * files get UIDs, vanished ones become expunged). STORE_NO_FOLDER etc. via
 * NULL with *error_r and *rc_r (may be NULL). */
struct store_folder *store_folder_open(struct store_account *a, const char *name, int *rc_r,
				       const char **error_r);
void store_folder_close(struct store_folder **fp);
/* Would store_folder_open find the folder's files as its index last saw
 * them (no directory scan: cheap enough for the loop)? 0 also when
 * there is no such folder. */
int store_folder_fresh(struct store_account *a, const char *name);
/* Current counters (cheap: one row). */
int store_folder_info(struct store_folder *f, struct store_folder_info *info_r);
/* IMAP \Recent: messages with UID >= *first_r are recent to the caller,
 * who takes them (the folder's first recent UID moves to UIDNEXT). One
 * session per message gets it, as RFC 3501 wants. */
int store_folder_take_recent(struct store_folder *f, uint32_t *first_r);

/* --- messages ------------------------------------------------------------ */

/* What store_fetch fills, as asked for in want (other fields NULL/0). */
enum {
	STORE_W_ENVELOPE = 1 << 0,
	STORE_W_BODY = 1 << 1,            /* BODY and BODYSTRUCTURE */
	STORE_W_HEADER = 1 << 2,          /* the raw header block */
	STORE_W_PREVIEW = 1 << 3,         /* a short plain-text preview (webmail) */
};

struct store_msg {
	uint32_t uid;
	uint64_t modseq;
	unsigned flags;              /* STORE_F_* */
	const char *keywords;        /* space separated, "" when none */
	long long size;              /* RFC822.SIZE: octets with CRLF line ends */
	long long internaldate;      /* unix seconds */
	int internaldate_tz;         /* minutes east of UTC of that date */
	const char *qid;             /* queue id of its delivery, or "" */
	const char *envelope;        /* IMAP ENVELOPE text "(...)" */
	const char *body;            /* IMAP BODY text */
	const char *bodystructure;   /* IMAP BODYSTRUCTURE text */
	const char *header;          /* raw header block with CRLF and the blank line;
				      * NULL when it was too large to keep (then read
				      * the file) */
	size_t header_len;
	const char *preview;
};

/* Messages with lo <= UID <= hi in UID order, at most limit (0: no
 * limit), to fn; fn's non-zero return stops the walk. Returns the number
 * given to fn, or -1. The pointers in *m are valid during the call only.
 * A caller streaming a large range calls again from the last UID + 1. */
int store_fetch(struct store_folder *f, uint32_t lo, uint32_t hi, size_t limit, unsigned want,
		int (*fn)(const struct store_msg *m, void *arg), void *arg);
/* Every UID of the folder in ascending order, as of HIGHESTMODSEQ
 * modseq (a SELECT's sequence map). The handle shares one map among its
 * callers until the folder changes; a map never changes once made.
 * Release each with store_uidmap_release (before the folder's handle is
 * closed) on the thread that got it. NULL on a database error. */
struct store_uidmap {
	uint64_t modseq;
	uint32_t n;
	const uint32_t *uids;
};
const struct store_uidmap *store_uidmap(struct store_folder *f);
void store_uidmap_release(const struct store_uidmap **mp);
/* The message file (LF line ends; the IMAP and POP3 layers add the CRs),
 * opened read-only, or -1 (an expunged UID: STORE_NO_FOLDER-free errno
 * ENOENT). *len_r: its size in bytes. */
int store_msg_open(struct store_folder *f, uint32_t uid, off_t *len_r, const char **error_r);

/* A set of UIDs: n ranges lo..hi (inclusive, any order, may overlap). */
struct store_uidset {
	const uint32_t (*r)[2];
	size_t n;
};

enum store_flag_op { STORE_FLAGS_SET, STORE_FLAGS_ADD, STORE_FLAGS_REMOVE };

/* STORE: changes flags (and keywords, space separated, may be NULL) of
 * every message in set; each changed message gets a new MODSEQ. With
 * unchangedsince != 0 (CONDSTORE), messages whose MODSEQ is higher are left
 * alone and reported to failed (may be NULL); the result is then
 * STORE_MODIFIED. changed (may be NULL) gets each message whose flags
 * changed, with its new flags, keywords and MODSEQ. */
int store_flags(struct store_folder *f, const struct store_uidset *set, enum store_flag_op op,
		unsigned flags, const char *keywords, uint64_t unchangedsince,
		void (*changed)(const struct store_msg *m, void *arg),
		void (*failed)(uint32_t uid, void *arg), void *arg, const char **error_r);
/* EXPUNGE: removes the messages with \Deleted (only those in set when set
 * is not NULL: UID EXPUNGE), leaving tombstones; fn (may be NULL) gets
 * each expunged UID in ascending order. Blocking: a worker's job. */
int store_expunge(struct store_folder *f, const struct store_uidset *set,
		  void (*fn)(uint32_t uid, void *arg), void *arg, const char **error_r);
/* COPY (move = 0) or MOVE into folder dest of the same account; fn gets
 * each source UID with its new UID in dest (COPYUID), *dest_uidvalidity_r
 * dest's UIDVALIDITY. A MOVE expunges the sources (fn_expunged, may be
 * NULL). Quota: copies count (quota 0: none). STORE_NO_FOLDER,
 * STORE_OVER_QUOTA, -1. Blocking: a worker's job. */
int store_copy(struct store_folder *f, const struct store_uidset *set, const char *dest,
	       int move, long long quota, uint32_t *dest_uidvalidity_r,
	       void (*fn)(uint32_t src_uid, uint32_t dst_uid, void *arg),
	       void (*fn_expunged)(uint32_t uid, void *arg), void *arg, const char **error_r);

/* What changed since modseq: changed (message rows, with want) and
 * expunged (UIDs from tombstones, ascending). *highest_r: the folder's
 * HIGHESTMODSEQ now. A session calls it at each command with the last
 * MODSEQ it saw, and sends EXISTS, EXPUNGE and FETCH FLAGS from it. */
int store_changes(struct store_folder *f, uint64_t modseq, unsigned want,
		  int (*changed)(const struct store_msg *m, void *arg),
		  void (*expunged)(uint32_t uid, void *arg), void *arg, uint64_t *highest_r,
		  const char **error_r);

/* APPEND: stream the message (CRLF or LF; stored with LF) into the
 * folder's tmp/, then commit with its flags, keywords and INTERNALDATE
 * (0: now). begin: STORE_NO_FOLDER etc. via NULL and *rc_r. commit:
 * STORE_OK with *uidvalidity_r and *uid_r (APPENDUID), STORE_OVER_QUOTA,
 * STORE_TOO_BIG, -1; the handle is freed in every case. write may run on
 * the loop (page cache writes); commit fsyncs: a worker's job. */
struct store_append *store_append_begin(struct store_account *a, const char *folder, int *rc_r,
					const char **error_r);
int store_append_write(struct store_append *w, const void *data, size_t len);
int store_append_commit(struct store_append **wp, unsigned flags, const char *keywords,
			long long internaldate, int internaldate_tz, long long quota,
			uint32_t *uidvalidity_r, uint32_t *uid_r, const char **error_r);
void store_append_abort(struct store_append **wp);

/* --- change notification (loop thread) ----------------------------------- */

/* fn(arg) runs on the loop, soon after anything changed in address's
 * account (any folder, any thread; another process's changes are seen
 * within about a second). */
struct store_watch *store_watch(struct store *s, const char *address, void (*fn)(void *arg),
				void *arg);
void store_unwatch(struct store_watch **wp);
/* Any thread: address's account changed (the store calls it itself after
 * its own changes). */
void store_notify(struct store *s, const char *address);

/* --- administration ------------------------------------------------------ */

/* `tandem mailbox verify|repair`: compares every folder's index with its
 * files, writing one line per finding to report (files without a row,
 * rows without a file, wrong sizes or flags, duplicated qids, a UIDNEXT not
 * above every UID). With repair the index is mended (new UIDs for unknown
 * files, rows without files expunged, counters fixed; never a renumbering
 * of a known UID). Returns the number of findings, or -1. */
int store_verify(struct store *s, const char *address, int repair, FILE *report,
		 const char **error_r);

/* "\\Seen \\Flagged kw1" for IMAP, from flags and keywords; buf of len. */
const char *store_flag_names(unsigned flags, const char *keywords, char *buf, size_t len);

#endif
