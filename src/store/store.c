/*
 * store: the store handle, accounts and change notification (see store.h).
 *
 * The loop thread is the thread that called store_new with a base: there
 * store_account_open shares one handle per address (reference counted);
 * any other thread gets a handle of its own. Notification: store_notify
 * marks the address's watches and makes an event active on the base
 * (libevent is set up with evthread_use_pthreads, so any thread may);
 * the loop then calls each marked watch. Changes by other processes are
 * found by a one-second poll of SQLite's PRAGMA data_version on a
 * connection per watched address (it changes when another connection
 * commits).
 *
 * The loop keeps a shared handle nobody holds for STORE_LINGER seconds
 * (at most STORE_IDLE such): a client that logs in again, or another
 * session a moment later, finds the index open, its pages mapped and its
 * folders' UID maps made (store_uidmap.c), and the loop never unmaps a
 * large index on every logout.
 *
 * Elsewhere (workers, the CLI) a closed handle is kept, up to
 * STORE_IDLE of them, and given to the next open of that address on any
 * thread: a delivery then costs no SQLite open (whose WAL recovery reads
 * the whole log when no other connection has it open).
 *
 * Public: store_new, store_free, store_account_open, store_account_close,
 * store_account_address, store_usage, store_account_remove, store_watch,
 * store_unwatch, store_notify; store_int.h: store_changed.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir.h"
#include "store/store_int.h"
#include "util/durable.h"
#include "util/log.h"
#include "util/xalloc.h"

#define STORE_IDLE 16
#define STORE_LINGER 120

struct store_watch {
	struct store *s;
	char *address;
	void (*fn)(void *arg);
	void *arg;
	int pending;
	struct store_watch *next;
};

struct store_wacct {
	char *address;
	sqlite3 *db;
	sqlite3_stmt *st;
	long long version;
	int refs;
	struct store_wacct *next;
};

static void
store_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;

	for (;;) {
		struct store_watch *w;
		void (*fn)(void *) = NULL;
		void *fa = NULL;

		pthread_mutex_lock(&s->lock);
		for (w = s->watches; w != NULL && !w->pending; w = w->next)
			;
		if (w != NULL) {
			w->pending = 0;
			fn = w->fn;
			fa = w->arg;
		}
		pthread_mutex_unlock(&s->lock);
		if (fn == NULL)
			return;
		fn(fa);
	}
}

static void
store_wacct_open(struct store *s, struct store_wacct *wa)
{
	char root[STORE_PATH], path[STORE_PATH + 16];

	maildir_path(s->data_dir, wa->address, root, sizeof(root));
	snprintf(path, sizeof(path), "%s/index.db", root);
	if (access(path, F_OK) != 0 ||
	    sqlite3_open_v2(path, &wa->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(wa->db, "PRAGMA data_version", -1, &wa->st, NULL) != SQLITE_OK) {
		sqlite3_close(wa->db);
		wa->db = NULL;
		return;
	}
	sqlite3_busy_timeout(wa->db, 100);
	if (sqlite3_step(wa->st) == SQLITE_ROW)
		wa->version = sqlite3_column_int64(wa->st, 0);
	sqlite3_reset(wa->st);
}

static void store_account_free(struct store_account *a);

/* The loop's handles nobody holds: those let go more than STORE_LINGER
 * seconds ago go, and beyond STORE_IDLE the oldest. */
static void
store_shared_expire(struct store *s)
{
	long long now = (long long)time(NULL);
	int kept = 0;

	for (struct store_account **pp = &s->shared; *pp != NULL;) {
		struct store_account *a = *pp;

		if (a->refs == 0 && (now - a->unused_since > STORE_LINGER || kept >= STORE_IDLE)) {
			*pp = a->next;
			store_account_free(a);
			continue;
		}
		kept += a->refs == 0;
		pp = &a->next;
	}
}

static void
store_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;

	store_shared_expire(s);

	/* waccts change on the loop thread only (store_watch/unwatch) */
	for (struct store_wacct *wa = s->waccts; wa != NULL; wa = wa->next) {
		long long v;

		if (wa->db == NULL) {
			store_wacct_open(s, wa);
			continue;
		}
		if (sqlite3_step(wa->st) != SQLITE_ROW) {
			sqlite3_reset(wa->st);
			continue;
		}
		v = sqlite3_column_int64(wa->st, 0);
		sqlite3_reset(wa->st);
		if (v != wa->version) {
			wa->version = v;
			store_notify(s, wa->address);
		}
	}
}

struct store *
store_new(const struct store_settings *set, struct event_base *base, const char **error_r)
{
	struct store *s = xcalloc(1, sizeof(*s));
	char host[256] = "localhost";

	s->data_dir = xstrdup(set->data_dir);
	s->retention = set->expunged_retention > 0 ? set->expunged_retention : 30 * 86400;
	s->base = base;
	s->loop = pthread_self();
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->burst_lock, NULL);
	s->pool = set->pool;
	for (int i = 0; i < STORE_WRITE_LOCKS; i++) {
		pthread_mutex_init(&s->write_lock[i], NULL);
		durable_group_init(&s->dir_sync[i]);
		pthread_mutex_init(&s->batch[i].mu, NULL);
		pthread_cond_init(&s->batch[i].cv, NULL);
		pthread_mutex_init(&s->dslot[i].mu, NULL);
	}
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	size_t o = 0;
	for (const char *p = host; *p && o + 1 < sizeof(s->host); p++)
		s->host[o++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				       (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'
			       ? *p
			       : '_';
	s->host[o] = '\0';
	if (base != NULL) {
		struct timeval one = { 1, 0 };

		s->notify_ev = event_new(base, -1, 0, store_notify_cb, s);
		s->poll_ev = event_new(base, -1, EV_PERSIST, store_poll_cb, s);
		if (s->notify_ev == NULL || s->poll_ev == NULL) {
			*error_r = "cannot set up the store's events";
			store_free(&s);
			return NULL;
		}
		event_add(s->poll_ev, &one);
	}
	return s;
}

static void
store_account_free(struct store_account *a)
{
	store_uidmap_drop_all(a);
	store_index_close(a);
	free(a->address);
	free(a);
}

void
store_free(struct store **sp)
{
	struct store *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	/* the logs into the indexes before the handles go: the next start's
	 * first open then has no log to read back (WAL recovery) and its
	 * reads come from the database file alone */
	for (struct store_account *a = s->shared; a != NULL; a = a->next)
		store_index_checkpoint(a);
	for (struct store_account *a = s->idle; a != NULL; a = a->next)
		store_index_checkpoint(a);
	for (int i = 0; i < STORE_WRITE_LOCKS; i++)
		if (s->dslot[i].a != NULL) {
			store_index_checkpoint(s->dslot[i].a);
			store_account_free(s->dslot[i].a);
			s->dslot[i].a = NULL;
		}
	while (s->shared != NULL) {
		struct store_account *a = s->shared;
		s->shared = a->next;
		store_account_free(a);
	}
	while (s->idle != NULL) {
		struct store_account *a = s->idle;
		s->idle = a->next;
		store_account_free(a);
	}
	store_sync_checks_free(s);
	while (s->watches != NULL) {
		struct store_watch *w = s->watches;
		s->watches = w->next;
		free(w->address);
		free(w);
	}
	while (s->waccts != NULL) {
		struct store_wacct *wa = s->waccts;
		s->waccts = wa->next;
		sqlite3_finalize(wa->st);
		sqlite3_close(wa->db);
		free(wa->address);
		free(wa);
	}
	if (s->notify_ev)
		event_free(s->notify_ev);
	if (s->poll_ev)
		event_free(s->poll_ev);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->burst_lock);
	for (int i = 0; i < STORE_WRITE_LOCKS; i++) {
		pthread_mutex_destroy(&s->write_lock[i]);
		durable_group_free(&s->dir_sync[i]);
		pthread_mutex_destroy(&s->batch[i].mu);
		pthread_cond_destroy(&s->batch[i].cv);
		pthread_mutex_destroy(&s->dslot[i].mu);
	}
	free(s->data_dir);
	free(s);
}

static int
store_on_loop(struct store *s)
{
	return s->base != NULL && pthread_equal(pthread_self(), s->loop);
}

static int
store_account_exists(const char *root)
{
	char p[STORE_PATH + 8];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/cur", root);
	return stat(p, &sb) == 0;
}

/* Is a's index still the file at its path (`tandem user del` in another
 * process moves the account away)? */
static int
store_account_current(const struct store_account *a)
{
	char p[STORE_PATH + 16];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/index.db", a->root);
	return stat(p, &sb) == 0 && sb.st_dev == a->db_dev && sb.st_ino == a->db_ino;
}

static struct store_account *
store_account_idle_take(struct store *s, const char *address)
{
	struct store_account *a = NULL;

	pthread_mutex_lock(&s->lock);
	for (struct store_account **pp = &s->idle; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->address, address) == 0) {
			a = *pp;
			*pp = a->next;
			a->next = NULL;
			s->nidle--;
			a->refs = 1;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	return a;
}

/* Keep a closed handle; the oldest goes when there are too many. */
static void
store_account_idle_put(struct store *s, struct store_account *a)
{
	struct store_account *drop = NULL;

	pthread_mutex_lock(&s->lock);
	a->next = s->idle;
	s->idle = a;
	if (++s->nidle > STORE_IDLE) {
		struct store_account **pp = &s->idle;

		while ((*pp)->next != NULL)
			pp = &(*pp)->next;
		drop = *pp;
		*pp = NULL;
		s->nidle--;
	}
	pthread_mutex_unlock(&s->lock);
	if (drop != NULL)
		store_account_free(drop);
}

static struct store_account *
store_account_open_as(struct store *s, const char *address, int shared, const char **error_r)
{
	struct store_account *a;

	if (shared)
		for (struct store_account **pp = &s->shared; (a = *pp) != NULL; pp = &a->next) {
			if (strcmp(a->address, address) != 0)
				continue;
			if (a->refs > 0) {
				a->refs++;
				return a;
			}
			/* let go a while ago: as a kept worker's handle */
			*pp = a->next;
			if (store_account_current(a) && store_folder_reconcile(a) == 0) {
				a->refs = 1;
				a->next = s->shared;
				s->shared = a;
				return a;
			}
			store_account_free(a);
			break;
		}
	/* a kept handle still reconciles (cheap reads, unless another process
	 * left something to finish) */
	if (!shared && (a = store_account_idle_take(s, address)) != NULL) {
		if (store_account_current(a)) {
			store_folder_reconcile(a);
			return a;
		}
		store_account_free(a);
	}
	a = xcalloc(1, sizeof(*a));
	a->s = s;
	a->address = xstrdup(address);
	a->refs = 1;
	maildir_path(s->data_dir, address, a->root, sizeof(a->root));
	if (!store_account_exists(a->root) && maildir_create(a->root) != 0) {
		*error_r = "cannot create the mailbox directory";
		store_account_free(a);
		return NULL;
	}
	if (store_index_open(a, error_r) != 0 || store_folder_defaults(a, error_r) != 0 ||
	    store_folder_reconcile(a) != 0) {
		store_account_free(a);
		return NULL;
	}
	{
		char p[STORE_PATH + 16];
		struct stat sb;

		snprintf(p, sizeof(p), "%s/index.db", a->root);
		if (stat(p, &sb) == 0) {
			a->db_dev = sb.st_dev;
			a->db_ino = sb.st_ino;
		}
	}
	if (shared) {
		a->is_shared = 1;
		a->next = s->shared;
		s->shared = a;
	}
	return a;
}

struct store_account *
store_account_open(struct store *s, const char *address, const char **error_r)
{
	return store_account_open_as(s, address, store_on_loop(s), error_r);
}

void
store_account_close(struct store_account **ap)
{
	struct store_account *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	if (--a->refs > 0)
		return;
	if (a->is_shared) {
		/* the newest first: the list is also the eviction order */
		for (struct store_account **pp = &a->s->shared; *pp; pp = &(*pp)->next)
			if (*pp == a) {
				*pp = a->next;
				break;
			}
		a->next = a->s->shared;
		a->s->shared = a;
		a->unused_since = (long long)time(NULL);
		store_shared_expire(a->s);
		return;
	}
	store_account_idle_put(a->s, a);
}

const char *
store_account_address(const struct store_account *a)
{
	return a->address;
}

/*
 * The deliveries into one address share one handle, the one of its
 * stripe (store_append.c): their reads and their batched rows all go
 * through one SQLite connection, whose page cache and mapping stay valid
 * from one delivery to the next. A handle of its own per worker would
 * find the index changed by the others' commits at every transaction and
 * re-read its pages and re-map the file each time. Another address on
 * the same stripe swaps the handle (the old one is kept as any closed
 * handle, for its next delivery).
 */
struct store_account *
store_deliver_lock(struct store *s, const char *address, int reconcile, const char **error_r)
{
	struct store_dslot *d = &s->dslot[store_address_stripe(address)];
	struct store_account *a;

	pthread_mutex_lock(&d->mu);
	if ((a = d->a) != NULL && strcmp(a->address, address) == 0 && store_account_current(a)) {
		if (reconcile)
			store_folder_reconcile(a);
		return a;
	}
	d->a = NULL;
	if (a != NULL && strcmp(a->address, address) == 0)
		store_account_free(a);   /* its index moved away */
	else if (a != NULL)
		store_account_close(&a);
	if ((a = store_account_open_as(s, address, 0, error_r)) == NULL) {
		pthread_mutex_unlock(&d->mu);
		return NULL;
	}
	d->a = a;
	return a;
}

void
store_deliver_unlock(struct store *s, const char *address)
{
	pthread_mutex_unlock(&s->dslot[store_address_stripe(address)].mu);
}

/* The stripe's delivery handle of address, if it has it, goes. */
static void
store_deliver_drop(struct store *s, const char *address)
{
	struct store_dslot *d = &s->dslot[store_address_stripe(address)];

	pthread_mutex_lock(&d->mu);
	if (d->a != NULL && strcmp(d->a->address, address) == 0) {
		store_account_free(d->a);
		d->a = NULL;
	}
	pthread_mutex_unlock(&d->mu);
}

int
store_usage(struct store_account *a, long long *bytes_r, long long *messages_r)
{
	return store_index_usage(a, bytes_r, messages_r);
}

int
store_account_remove(struct store *s, const char *address, char *moved_r, size_t len)
{
	char root[STORE_PATH], dst[STORE_PATH + 64], parent[STORE_PATH + 64];
	const char *local, *domain;
	struct store_account *a;
	struct stat sb;
	size_t rl;

	moved_r[0] = '\0';
	maildir_path(s->data_dir, address, root, sizeof(root));
	if (lstat(root, &sb) != 0)
		return errno == ENOENT ? 0 : -1;
	for (struct store_account **pp = &s->shared; (a = *pp) != NULL; pp = &a->next)
		if (strcmp(a->address, address) == 0) {
			if (a->refs > 0) {
				errno = EBUSY;
				return -1;
			}
			*pp = a->next;
			store_account_free(a);
			break;
		}
	/* kept handles hold the index open: they go first */
	store_deliver_drop(s, address);
	while ((a = store_account_idle_take(s, address)) != NULL)
		store_account_free(a);
	/* root is data_dir/mail/<domain>/<local>: keep those two names */
	rl = strlen(root);
	local = strrchr(root, '/') + 1;
	root[local - root - 1] = '\0';
	domain = strrchr(root, '/') + 1;
	root[local - root - 1] = '/';
	snprintf(parent, sizeof(parent), "%s/mail/.removed/%.*s", s->data_dir,
		 (int)(local - domain - 1), domain);
	if (rl == 0 || durable_mkdirs(parent, 0700) != 0)
		return -1;
	/* removed twice within a second: "<local>.<time>.<n>" */
	for (int n = 0;; n++) {
		struct stat ds;

		if (n == 0)
			snprintf(dst, sizeof(dst), "%s/%s.%lld", parent, local, (long long)time(NULL));
		else
			snprintf(dst, sizeof(dst), "%s/%s.%lld.%d", parent, local,
				 (long long)time(NULL), n);
		if (lstat(dst, &ds) != 0)
			break;
		if (n >= 1000) {
			errno = EEXIST;
			return -1;
		}
	}
	if (durable_rename(root, dst) != 0)
		return -1;
	snprintf(moved_r, len, "%s", dst);
	return 0;
}

/* --- notification -------------------------------------------------------- */

void
store_notify(struct store *s, const char *address)
{
	int any = 0;

	if (s->base == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	for (struct store_watch *w = s->watches; w != NULL; w = w->next)
		if (strcmp(w->address, address) == 0)
			any = w->pending = 1;
	pthread_mutex_unlock(&s->lock);
	if (any)
		event_active(s->notify_ev, EV_TIMEOUT, 0);
}

void
store_changed(struct store_account *a)
{
	store_notify(a->s, a->address);
}

struct store_watch *
store_watch(struct store *s, const char *address, void (*fn)(void *arg), void *arg)
{
	struct store_watch *w = xcalloc(1, sizeof(*w));
	struct store_wacct *wa;

	w->s = s;
	w->address = xstrdup(address);
	w->fn = fn;
	w->arg = arg;
	for (wa = s->waccts; wa != NULL; wa = wa->next)
		if (strcmp(wa->address, address) == 0)
			break;
	if (wa == NULL) {
		wa = xcalloc(1, sizeof(*wa));
		wa->address = xstrdup(address);
		store_wacct_open(s, wa);
		wa->next = s->waccts;
		s->waccts = wa;
	}
	wa->refs++;
	pthread_mutex_lock(&s->lock);
	w->next = s->watches;
	s->watches = w;
	pthread_mutex_unlock(&s->lock);
	return w;
}

void
store_unwatch(struct store_watch **wp)
{
	struct store_watch *w = *wp;
	struct store *s;

	if (w == NULL)
		return;
	*wp = NULL;
	s = w->s;
	pthread_mutex_lock(&s->lock);
	for (struct store_watch **pp = &s->watches; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	pthread_mutex_unlock(&s->lock);
	for (struct store_wacct **pp = &s->waccts; *pp; pp = &(*pp)->next) {
		struct store_wacct *wa = *pp;

		if (strcmp(wa->address, w->address) == 0) {
			if (--wa->refs == 0) {
				*pp = wa->next;
				sqlite3_finalize(wa->st);
				sqlite3_close(wa->db);
				free(wa->address);
				free(wa);
			}
			break;
		}
	}
	free(w->address);
	free(w);
}
