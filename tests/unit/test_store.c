/*
 * test_store: the mailbox store — folder names and their directories,
 * delivery (idempotent by queue id, quota), sync of files from elsewhere,
 * flags, expunge, COPY/MOVE, APPEND, folder commands, \Recent, watches,
 * and the reconcile paths of every crash window, built on disk by hand.
 * The index columns come from the real store_mime.
 * TANDEM_STORE_BENCH=N times open + fetch of N messages (default 2000,
 * printed, never asserted).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/maildir.h"
#include "store/store.h"
#include "store/store_int.h"

#define ADDR "alice@example.com"

struct fx {
	char dir[64];
	char root[STORE_PATH];
	struct store *s;
	struct store_account *a;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct store_settings set = { 0 };
	const char *err;

	strcpy(fx->dir, "/tmp/tandem-test-store-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	set.data_dir = fx->dir;
	set.expunged_retention = 86400;
	fx->s = store_new(&set, NULL, &err);
	assert_non_null(fx->s);
	fx->a = store_account_open(fx->s, ADDR, &err);
	assert_non_null(fx->a);
	maildir_path(fx->dir, ADDR, fx->root, sizeof(fx->root));
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[128];

	store_account_close(&fx->a);
	store_free(&fx->s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	free(fx);
	return system(cmd) == 0 ? 0 : -1;
}

/* A message file to deliver from (CRLF, as the queue holds it). */
static int
msg_fd(const char *subject, long long *len_r)
{
	char buf[512];
	FILE *f = tmpfile();
	int n = snprintf(buf, sizeof(buf),
			 "From: bob@example.org\r\nSubject: %s\r\n\r\nHello\r\nworld\r\n", subject);

	fwrite(buf, 1, n, f);
	fflush(f);
	*len_r = n;
	n = dup(fileno(f));
	fclose(f);
	return n;
}

static int
deliver(struct fx *fx, const char *qid, const char *subject, long long quota, uint32_t *uid_r)
{
	long long len;
	int fd = msg_fd(subject, &len), rc;
	const char *err = NULL;

	rc = store_deliver(fx->s, ADDR, NULL, qid, "Return-Path: <bob@example.org>\n", fd, 0, len,
			   quota, uid_r, &err);
	close(fd);
	return rc;
}

static int
count_files(const char *dir, const char *sub)
{
	char p[STORE_PATH + 8];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if ((d = opendir(p)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
folder_dir(struct fx *fx, const char *disk, char *buf, size_t len)
{
	if (disk[0])
		snprintf(buf, len, "%s/%s", fx->root, disk);
	else
		snprintf(buf, len, "%s", fx->root);
}

/* The one file in dir/sub, its name into buf. */
static void
only_file(const char *dir, const char *sub, char *buf, size_t len)
{
	char p[STORE_PATH + 8];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	assert_non_null(d = opendir(p));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.') {
			snprintf(buf, len, "%s/%s", p, de->d_name);
			n++;
		}
	closedir(d);
	assert_int_equal(n, 1);
}

static void
status(struct fx *fx, const char *name, struct store_folder_info *fi)
{
	const char *err;

	assert_int_equal(store_folder_status(fx->a, name, fi, &err), 0);
}

static uint32_t
one_range[1][2];

static const struct store_uidset *
uids(uint32_t lo, uint32_t hi)
{
	static struct store_uidset set;

	one_range[0][0] = lo;
	one_range[0][1] = hi;
	set.r = (const uint32_t(*)[2])one_range;
	set.n = 1;
	return &set;
}

/* --- names -------------------------------------------------------------- */

static void
test_name_check(void **state)
{
	static const char *const good[] = { "INBOX", "inbox", "a", "a/b", "a.b", "%2f", "~x",
					    "...", "a/...", "Entwürfe", "INBOX/x", "a b" };
	static const char *const bad[] = { "", "/", "/a", "a/", "a//b", ".", "..", "a/..",
					   "../x", "INBOX/../x", "a/./b", "a\x01", "a\x7f",
					   "\xff", "\xc0\xaf", "\xed\xa0\x80" };
	char disk[256], back[512], many[600];
	const char *err;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(store_folder_name_check(good[i], &err), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(store_folder_name_check(bad[i], &err), STORE_BAD_NAME);
	memset(many, 'x', 256);
	many[256] = '\0';
	assert_int_equal(store_folder_name_check(many, &err), STORE_BAD_NAME);
	strcpy(many, "a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a");
	assert_int_equal(store_folder_name_check(many, &err), STORE_BAD_NAME);
	many[31] = '\0';   /* 16 levels */
	assert_int_equal(store_folder_name_check(many, &err), 0);

	assert_int_equal(store_folder_disk("a/b", disk, sizeof(disk)), 0);
	assert_string_equal(disk, ".a.b");
	assert_int_equal(store_folder_disk("a.b/%2f", disk, sizeof(disk)), 0);
	assert_string_equal(disk, ".a%2Eb.%252f");
	assert_int_equal(store_folder_disk("~x/a~", disk, sizeof(disk)), 0);
	assert_string_equal(disk, ".%7Ex.a~");
	assert_int_equal(store_folder_disk("...", disk, sizeof(disk)), 0);
	assert_string_equal(disk, ".%2E%2E%2E");
	assert_int_equal(store_folder_undisk(".a%2Eb.%252f", back, sizeof(back)), 0);
	assert_string_equal(back, "a.b/%2f");
	assert_int_equal(store_folder_undisk(".~del", back, sizeof(back)), -1);
	assert_int_equal(store_folder_undisk(".a%00", back, sizeof(back)), -1);
	assert_int_equal(store_folder_canon("iNbOx/Sub", back, sizeof(back), &err), 0);
	assert_string_equal(back, "INBOX/Sub");
	memset(many, '.', 255);
	many[255] = '\0';
	many[0] = 'x';
	assert_int_equal(store_folder_disk(many, disk, sizeof(disk)), -1);
}

static void
test_flag_names(void **state)
{
	char buf[128];

	assert_string_equal(store_flag_names(0, "", buf, sizeof(buf)), "");
	assert_string_equal(store_flag_names(STORE_F_ALL, "$Junk a", buf, sizeof(buf)),
			    "\\Seen \\Answered \\Flagged \\Deleted \\Draft $Junk a");
	assert_string_equal(store_flag_names(STORE_F_FLAGGED, NULL, buf, sizeof(buf)), "\\Flagged");
	assert_string_equal(store_flag_names(0, "kw", buf, sizeof(buf)), "kw");
	store_flag_names(STORE_F_ALL, "x", buf, 8);
	assert_true(strlen(buf) < 8);
}

/* Hostile names never make a directory outside the account. */
static void
test_name_escape(void **state)
{
	struct fx *fx = *state;
	static const char *const names[] = { "%2f..%2f..", "..%2f..", "a%2F..", "~root", "x.y" };
	char path[STORE_PATH + 64];
	const char *err;
	struct stat sb;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_int_equal(store_folder_create(fx->a, names[i], 0, &err), 0);
	assert_int_equal(store_folder_create(fx->a, "INBOX/../x", 0, &err), STORE_BAD_NAME);
	assert_int_equal(store_folder_create(fx->a, "../bob", 0, &err), STORE_BAD_NAME);
	/* only the account's own directory changed: nothing beside it */
	snprintf(path, sizeof(path), "%s/mail/example.com", fx->dir);
	assert_int_equal(count_files(fx->dir, "mail/example.com"), 1);
	snprintf(path, sizeof(path), "%s/.%%252f%%2E%%2E%%252f%%2E%%2E/cur", fx->root);
	assert_int_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/.%%7Eroot/cur", fx->root);
	assert_int_equal(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/.x%%2Ey/cur", fx->root);
	assert_int_equal(stat(path, &sb), 0);
}

/* --- accounts and folders ---------------------------------------------- */

struct list_acc {
	char names[32][64];
	unsigned su[32];
	int sub[32], children[32], noselect[32];
	int n;
};

static int
list_cb(const struct store_folder_entry *e, void *arg)
{
	struct list_acc *l = arg;

	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", e->name);
	l->su[l->n] = e->special_use;
	l->sub[l->n] = e->subscribed;
	l->children[l->n] = e->has_children;
	l->noselect[l->n] = e->noselect;
	l->n++;
	return 0;
}

static int
sub_cb(const char *name, void *arg)
{
	struct list_acc *l = arg;

	snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", name);
	return 0;
}

static void
test_defaults(void **state)
{
	struct fx *fx = *state;
	struct list_acc l = { 0 };
	static const char *const want[] = { "INBOX", "Archive", "Drafts", "Junk", "Sent",
					    "Trash" };
	char p[STORE_PATH + 32];
	struct stat sb;

	assert_int_equal(store_folder_list(fx->a, list_cb, &l), 0);
	assert_int_equal(l.n, 6);
	for (int i = 0; i < 6; i++) {
		assert_string_equal(l.names[i], want[i]);
		assert_true(l.sub[i]);
		assert_false(l.noselect[i]);
	}
	assert_int_equal(l.su[0], 0);
	assert_int_equal(l.su[1], STORE_SU_ARCHIVE);
	assert_int_equal(l.su[2], STORE_SU_DRAFTS);
	assert_int_equal(l.su[5], STORE_SU_TRASH);
	snprintf(p, sizeof(p), "%s/.Sent/cur", fx->root);
	assert_int_equal(stat(p, &sb), 0);
	snprintf(p, sizeof(p), "%s/.Sent/maildirfolder", fx->root);
	assert_int_equal(stat(p, &sb), 0);
	snprintf(p, sizeof(p), "%s/index.db", fx->root);
	assert_int_equal(stat(p, &sb), 0);
	assert_string_equal(store_account_address(fx->a), ADDR);
}

static void
test_create_list_delete(void **state)
{
	struct fx *fx = *state;
	struct list_acc l = { 0 };
	struct store_folder_info fi, fi2;
	const char *err;
	int rc;

	assert_int_equal(store_folder_create(fx->a, "a/b", 0, &err), 0);
	assert_int_equal(store_folder_create(fx->a, "a/b", 0, &err), STORE_EXISTS);
	assert_int_equal(store_folder_create(fx->a, "Inbox", 0, &err), STORE_EXISTS);
	assert_int_equal(store_folder_list(fx->a, list_cb, &l), 0);
	assert_int_equal(l.n, 8);
	assert_string_equal(l.names[1], "Archive");
	assert_string_equal(l.names[2], "Drafts");
	/* "a" exists only by its child */
	assert_string_equal(l.names[3], "Junk");
	assert_string_equal(l.names[5], "Trash");
	assert_string_equal(l.names[6], "a");
	assert_true(l.noselect[6]);
	assert_true(l.children[6]);
	assert_string_equal(l.names[7], "a/b");
	assert_false(l.noselect[7]);
	assert_null(store_folder_open(fx->a, "a", &rc, &err));
	assert_int_equal(rc, STORE_NO_FOLDER);

	status(fx, "a/b", &fi);
	assert_int_equal(deliver(fx, "Q1", "one", 0, NULL), STORE_OK);
	assert_int_equal(store_folder_delete(fx->a, "a/b", &err), 0);
	assert_int_equal(store_folder_delete(fx->a, "a/b", &err), STORE_NO_FOLDER);
	assert_int_equal(store_folder_delete(fx->a, "INBOX", &err), STORE_BAD_NAME);
	assert_int_equal(store_folder_create(fx->a, "a/b", 0, &err), 0);
	status(fx, "a/b", &fi2);
	assert_true(fi2.uidvalidity > fi.uidvalidity);
	assert_int_equal(fi2.uidnext, 1);

	/* a folder with children: DELETE leaves it \Noselect */
	assert_int_equal(store_folder_create(fx->a, "a", 0, &err), 0);
	assert_int_equal(store_folder_delete(fx->a, "a", &err), 0);
	memset(&l, 0, sizeof(l));
	store_folder_list(fx->a, list_cb, &l);
	assert_string_equal(l.names[6], "a");
	assert_true(l.noselect[6]);
	assert_int_equal(store_folder_create(fx->a, "a", STORE_SU_FLAGGED, &err), 0);
	memset(&l, 0, sizeof(l));
	store_folder_list(fx->a, list_cb, &l);
	assert_false(l.noselect[6]);
	assert_int_equal(l.su[6], STORE_SU_FLAGGED);

	/* subscriptions may name what does not exist */
	assert_int_equal(store_folder_subscribe(fx->a, "nothere", 1, &err), 0);
	assert_int_equal(store_folder_subscribe(fx->a, "Sent", 0, &err), 0);
	assert_int_equal(store_folder_subscribe(fx->a, "../x", 1, &err), STORE_BAD_NAME);
	{
		struct list_acc sl = { 0 };

		assert_int_equal(store_folder_subscriptions(fx->a, sub_cb, &sl), 0);
		assert_int_equal(sl.n, 6);
		assert_string_equal(sl.names[0], "Archive");
		assert_string_equal(sl.names[4], "Trash");
		assert_string_equal(sl.names[5], "nothere");
	}
	memset(&l, 0, sizeof(l));
	store_folder_list(fx->a, list_cb, &l);
	assert_string_equal(l.names[4], "Sent");
	assert_false(l.sub[4]);
}

/* --- delivery ----------------------------------------------------------- */

struct fetch_acc {
	uint32_t uid[64];
	unsigned flags[64];
	long long size[64];
	char env[64][256];
	char kw[64][64];
	int n;
};

static int
fetch_cb(const struct store_msg *m, void *arg)
{
	struct fetch_acc *fa = arg;

	if (fa->n < 64) {
		fa->uid[fa->n] = m->uid;
		fa->flags[fa->n] = m->flags;
		fa->size[fa->n] = m->size;
		snprintf(fa->env[fa->n], 256, "%s", m->envelope ? m->envelope : "(null)");
		snprintf(fa->kw[fa->n], 64, "%s", m->keywords);
	}
	fa->n++;
	return 0;
}

struct want_acc {
	char header[512], body[256], bs[256], preview[64];
	size_t header_len;
	int env_null;
};

static int
want_cb(const struct store_msg *m, void *arg)
{
	struct want_acc *w = arg;

	w->env_null = m->envelope == NULL;
	snprintf(w->header, sizeof(w->header), "%.*s", (int)m->header_len,
		 m->header ? m->header : "");
	w->header_len = m->header_len;
	snprintf(w->body, sizeof(w->body), "%s", m->body ? m->body : "");
	snprintf(w->bs, sizeof(w->bs), "%s", m->bodystructure ? m->bodystructure : "");
	snprintf(w->preview, sizeof(w->preview), "%s", m->preview ? m->preview : "");
	return 0;
}

static void
test_deliver(void **state)
{
	struct fx *fx = *state;
	struct store_folder *f;
	struct fetch_acc fa = { 0 };
	const char *err;
	char path[STORE_PATH + 300], buf[512];
	uint32_t uid = 0;
	off_t len;
	int fd, n;

	assert_int_equal(deliver(fx, "Q1", "hello", 0, &uid), STORE_OK);
	assert_int_equal(uid, 1);
	assert_int_equal(deliver(fx, "Q1", "hello", 0, &uid), STORE_DUPLICATE);
	assert_int_equal(deliver(fx, "Q2", "second", 0, &uid), STORE_OK);
	assert_int_equal(uid, 2);
	assert_int_equal(count_files(fx->root, "new"), 2);
	assert_int_equal(count_files(fx->root, "tmp"), 0);

	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	assert_int_equal(store_fetch(f, 1, 0xffffffff, 0, STORE_W_ENVELOPE, fetch_cb, &fa), 2);
	assert_int_equal(fa.uid[0], 1);
	assert_non_null(strstr(fa.env[0], "\"hello\""));   /* store_mime's ENVELOPE */
	assert_true(fa.env[0][0] == '(');
	{
		struct want_acc w = { 0 }, none = { 0 };

		assert_int_equal(store_fetch(f, 1, 1, 0, STORE_W_HEADER | STORE_W_BODY |
							 STORE_W_PREVIEW, want_cb, &w), 1);
		assert_true(w.env_null);
		assert_non_null(strstr(w.header, "Subject: hello\r\n"));
		assert_int_equal(strlen(w.header), w.header_len);
		assert_non_null(strstr(w.header, "\r\n\r\n"));
		assert_true(w.body[0] == '(' && w.bs[0] == '(');
		assert_non_null(strstr(w.preview, "Hello"));
		assert_int_equal(store_fetch(f, 1, 1, 0, 0, want_cb, &none), 1);
		assert_string_equal(none.header, "");
		assert_string_equal(none.bs, "");
	}
	/* Return-Path LF + 5 lines: stored with LF, counted with CRLF */
	assert_int_equal(fa.size[0], strlen("Return-Path: <bob@example.org>\r\n") +
					     strlen("From: bob@example.org\r\nSubject: hello\r\n"
						    "\r\nHello\r\nworld\r\n"));
	fd = store_msg_open(f, 1, &len, &err);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n] = '\0';
	assert_int_equal(len, n);
	assert_null(strchr(buf, '\r'));
	assert_non_null(strstr(buf, "Subject: hello\nHello") == NULL ? strstr(buf, "\n\nHello") : buf);

	/* a flag change renames the file: the qid still finds it */
	assert_int_equal(store_flags(f, uids(1, 1), STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0, NULL,
				     NULL, NULL, &err),
			 STORE_OK);
	assert_int_equal(count_files(fx->root, "cur"), 1);
	only_file(fx->root, "cur", path, sizeof(path));
	assert_non_null(strstr(path, ":2,S"));
	assert_int_equal(deliver(fx, "Q1", "hello", 0, NULL), STORE_DUPLICATE);
	/* and a MOVE to another folder */
	assert_int_equal(store_copy(f, uids(1, 1), "Archive", 1, 0, NULL, NULL, NULL, NULL, &err),
			 STORE_OK);
	assert_int_equal(deliver(fx, "Q1", "hello", 0, NULL), STORE_DUPLICATE);
	store_folder_close(&f);
	assert_int_equal(store_deliver(fx->s, ADDR, NULL, "../x", NULL, 0, 0, 0, 0, NULL, &err),
			 STORE_ERROR);
	assert_int_equal(store_deliver(fx->s, ADDR, "nothere", "Q9", NULL, 0, 0, 0, 0, NULL, &err),
			 STORE_NO_FOLDER);
}

static void
test_deliver_quota(void **state)
{
	struct fx *fx = *state;
	long long bytes, msgs;

	assert_int_equal(deliver(fx, "Q1", "a", 10, NULL), STORE_TOO_BIG);
	assert_int_equal(deliver(fx, "Q1", "a", 250, NULL), STORE_OK);
	assert_int_equal(store_usage(fx->a, &bytes, &msgs), 0);
	assert_int_equal(msgs, 1);
	assert_true(bytes > 50 && bytes < 250);
	assert_int_equal(deliver(fx, "Q2", "b", bytes + 20, NULL), STORE_OVER_QUOTA);
	assert_int_equal(deliver(fx, "Q2", "b", 0, NULL), STORE_OK);
	assert_int_equal(store_usage(fx->a, &bytes, &msgs), 0);
	assert_int_equal(msgs, 2);
	assert_int_equal(count_files(fx->root, "tmp"), 0);
}

static void
sql(struct fx *fx, const char *q)
{
	char p[STORE_PATH + 16];
	sqlite3 *db;

	snprintf(p, sizeof(p), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static long long
sql_int(struct fx *fx, const char *q)
{
	char p[STORE_PATH + 16];
	sqlite3_stmt *st;
	sqlite3 *db;
	long long v = -1;

	snprintf(p, sizeof(p), "%s/index.db", fx->root);
	assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static long long
dir_mtime(const char *dir, const char *sub)
{
	char p[STORE_PATH + 8];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	assert_int_equal(stat(p, &sb), 0);
	return (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
}

/* The store's own changes keep the index in sync with the directories
 * (no scan at the next open), and a file another program adds right
 * after is still seen. */
static void
test_sync_after_own_changes(void **state)
{
	struct fx *fx = *state;
	struct store_folder *f;
	struct store_folder_info fi;
	char p[STORE_PATH + 64];
	const char *err;

	assert_int_equal(deliver(fx, "Q1", "a", 0, NULL), STORE_OK);
	assert_int_equal(sql_int(fx, "SELECT sync_new FROM folders WHERE name = 'INBOX'"),
			 dir_mtime(fx->root, "new"));
	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	store_flags(f, uids(1, 1), STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0, NULL, NULL, NULL, &err);
	store_folder_close(&f);
	assert_int_equal(sql_int(fx, "SELECT sync_cur FROM folders WHERE name = 'INBOX'"),
			 dir_mtime(fx->root, "cur"));
	assert_int_equal(sql_int(fx, "SELECT sync_new FROM folders WHERE name = 'INBOX'"),
			 dir_mtime(fx->root, "new"));
	snprintf(p, sizeof(p), "%s/new/1.M1.other", fx->root);
	write_file(p, "Subject: right after\n\nx\n");
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 2);
}

/* Crash between linking the file and committing its row: a retried
 * delivery indexes the file instead of writing it again. */
static void
test_deliver_crash_before_row(void **state)
{
	struct fx *fx = *state;
	struct store_folder_info fi;
	uint32_t uid;

	assert_int_equal(deliver(fx, "Q1", "a", 0, NULL), STORE_OK);
	sql(fx, "DELETE FROM messages");
	assert_int_equal(deliver(fx, "Q1", "a", 0, &uid), STORE_DUPLICATE);
	assert_int_equal(count_files(fx->root, "new"), 1);
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 1);
	assert_int_equal(deliver(fx, "Q1", "a", 0, &uid), STORE_DUPLICATE);
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 1);
	/* the same without a retry: the open's sync picks it up, qid too */
	sql(fx, "DELETE FROM messages");
	status(fx, "INBOX", &fi);   /* row gone, file there: rescan */
	sql(fx, "UPDATE folders SET sync_new = 0");
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 1);
	assert_int_equal(deliver(fx, "Q1", "a", 0, &uid), STORE_DUPLICATE);
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 1);
}

/* --- sync --------------------------------------------------------------- */


static void
test_sync_foreign(void **state)
{
	struct fx *fx = *state;
	struct store_folder *f;
	struct store_folder_info fi;
	struct fetch_acc fa = { 0 };
	char p[STORE_PATH + 64];
	const char *err;
	uint64_t hm;

	snprintf(p, sizeof(p), "%s/cur/100.M1.other:2,SF", fx->root);
	write_file(p, "Subject: old\n\nseen\n");
	snprintf(p, sizeof(p), "%s/new/200.M2.other", fx->root);
	write_file(p, "Subject: newer\n\nnew\n");
	{
		struct timespec ts[2] = { { 1000, 0 }, { 1000, 0 } };
		snprintf(p, sizeof(p), "%s/cur/100.M1.other:2,SF", fx->root);
		utimensat(AT_FDCWD, p, ts, 0);
	}
	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	assert_int_equal(store_fetch(f, 1, 100, 0, STORE_W_ENVELOPE, fetch_cb, &fa), 2);
	assert_int_equal(fa.uid[0], 1);
	assert_non_null(strstr(fa.env[0], "old"));   /* older mtime first */
	assert_int_equal(fa.flags[0], STORE_F_SEEN | STORE_F_FLAGGED);
	assert_int_equal(fa.flags[1], 0);
	assert_int_equal(fa.size[1], strlen("Subject: newer\r\n\r\nnew\r\n"));
	store_folder_info(f, &fi);
	assert_int_equal(fi.messages, 2);
	assert_int_equal(fi.unseen, 1);
	assert_int_equal(fi.first_unseen_uid, 2);
	assert_int_equal(fi.uidnext, 3);
	hm = fi.highestmodseq;
	store_folder_close(&f);

	/* flags another program changed in a suffix are taken in */
	{
		char q[STORE_PATH + 64];
		struct fetch_acc fb = { 0 };

		snprintf(q, sizeof(q), "%s/cur/100.M1.other:2,RS", fx->root);
		snprintf(p, sizeof(p), "%s/cur/100.M1.other:2,SF", fx->root);
		assert_int_equal(rename(p, q), 0);
		assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
		store_fetch(f, 1, 1, 0, 0, fetch_cb, &fb);
		assert_int_equal(fb.flags[0], STORE_F_SEEN | STORE_F_ANSWERED);
		store_folder_info(f, &fi);
		assert_true(fi.highestmodseq > hm);
		hm = fi.highestmodseq;
		store_folder_close(&f);
		snprintf(p, sizeof(p), "%s", q);
	}
	/* a file removed by another program: expunged at the next open */
	unlink(p);
	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	store_folder_info(f, &fi);
	assert_int_equal(fi.messages, 1);
	assert_int_equal(fi.uidnext, 3);
	assert_int_equal(fi.unseen, 1);
	assert_true(fi.highestmodseq > hm);
	store_folder_close(&f);
	/* reopening changes nothing more */
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 1);
	assert_int_equal(fi.uidnext, 3);
}

/* --- flags, expunge, changes ------------------------------------------- */

static void
uid_cb(uint32_t uid, void *arg)
{
	struct fetch_acc *fa = arg;

	fa->uid[fa->n++] = uid;
}

static int
changed_cb(const struct store_msg *m, void *arg)
{
	return fetch_cb(m, arg);
}

static void
changed_cb2(const struct store_msg *m, void *arg)
{
	fetch_cb(m, arg);
}

static void
test_flags_expunge(void **state)
{
	struct fx *fx = *state;
	struct store_folder *f;
	struct fetch_acc fa = { 0 }, fail = { 0 }, ex = { 0 };
	struct store_folder_info fi;
	const char *err;
	uint64_t ms0, hi;

	for (int i = 0; i < 4; i++) {
		char q[8];
		snprintf(q, sizeof(q), "Q%d", i);
		assert_int_equal(deliver(fx, q, "m", 0, NULL), STORE_OK);
	}
	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	store_folder_info(f, &fi);
	ms0 = fi.highestmodseq;
	assert_int_equal(store_flags(f, uids(1, 2), STORE_FLAGS_ADD, STORE_F_SEEN, "$Label1 Work",
				     0, changed_cb2, NULL, &fa, &err),
			 STORE_OK);
	assert_int_equal(fa.n, 2);
	assert_string_equal(fa.kw[0], "$Label1 Work");
	/* nothing changes: no callbacks, no MODSEQ spent */
	fa.n = 0;
	assert_int_equal(store_flags(f, uids(1, 2), STORE_FLAGS_ADD, STORE_F_SEEN, "work", 0,
				     changed_cb2, NULL, &fa, &err),
			 STORE_OK);
	assert_int_equal(fa.n, 0);
	store_folder_info(f, &fi);
	assert_int_equal(fi.highestmodseq, ms0 + 1);
	assert_int_equal(fi.unseen, 2);
	/* CONDSTORE: 1 and 2 changed after ms0 */
	assert_int_equal(store_flags(f, uids(1, 4), STORE_FLAGS_ADD, STORE_F_DELETED, NULL, ms0,
				     NULL, uid_cb, &fail, &err),
			 STORE_MODIFIED);
	assert_int_equal(fail.n, 2);
	assert_int_equal(fail.uid[0], 1);
	assert_int_equal(fail.uid[1], 2);
	assert_int_equal(store_flags(f, uids(1, 1), STORE_FLAGS_REMOVE, 0, "WORK", 0, NULL, NULL,
				     NULL, &err),
			 STORE_OK);
	memset(&fa, 0, sizeof(fa));
	store_fetch(f, 1, 1, 0, 0, fetch_cb, &fa);
	assert_string_equal(fa.kw[0], "$Label1");
	assert_int_equal(store_flags(f, uids(2, 2), STORE_FLAGS_SET, STORE_F_FLAGGED, NULL, 0,
				     NULL, NULL, NULL, &err),
			 STORE_OK);
	memset(&fa, 0, sizeof(fa));
	store_fetch(f, 2, 2, 0, 0, fetch_cb, &fa);
	assert_int_equal(fa.flags[0], STORE_F_FLAGGED);
	assert_string_equal(fa.kw[0], "");

	/* changes since ms0 + 1: 1, 2 (flags), 3, 4 (\Deleted) */
	memset(&fa, 0, sizeof(fa));
	assert_int_equal(store_changes(f, ms0 + 1, 0, changed_cb, uid_cb, &ex, &hi, &err), 0);
	store_changes(f, ms0 + 1, 0, changed_cb, NULL, &fa, &hi, &err);
	assert_int_equal(fa.n, 4);
	/* EXPUNGE of a set: only 3; then all \Deleted: 4 */
	memset(&ex, 0, sizeof(ex));
	assert_int_equal(store_expunge(f, uids(3, 3), uid_cb, &ex, &err), 0);
	assert_int_equal(ex.n, 1);
	assert_int_equal(ex.uid[0], 3);
	assert_int_equal(store_expunge(f, NULL, uid_cb, &ex, &err), 0);
	assert_int_equal(ex.n, 2);
	assert_int_equal(ex.uid[1], 4);
	assert_int_equal(count_files(fx->root, "new") + count_files(fx->root, "cur"), 2);
	memset(&ex, 0, sizeof(ex));
	store_changes(f, hi, 0, NULL, uid_cb, &ex, &hi, &err);
	assert_int_equal(ex.n, 2);
	assert_int_equal(ex.uid[0], 3);
	store_folder_info(f, &fi);
	assert_int_equal(fi.messages, 2);
	assert_int_equal(fi.highestmodseq, hi);
	store_folder_close(&f);
}

struct nested {
	struct store_folder *f;
	int n, rc;
};

static int
nested_cb(const struct store_msg *m, void *arg)
{
	struct nested *ns = arg;
	const char *err;
	off_t len;
	int fd = store_msg_open(ns->f, m->uid, &len, &err);

	assert_true(fd >= 0);
	close(fd);
	/* FETCH BODY[] sets \Seen while the walk goes on */
	ns->rc |= store_flags(ns->f, uids(m->uid, m->uid), STORE_FLAGS_ADD, STORE_F_SEEN, NULL, 0,
			      NULL, NULL, NULL, &err);
	ns->n++;
	return 0;
}

/* A session may open and flag messages from inside a store_fetch walk. */
static void
test_fetch_nested(void **state)
{
	struct fx *fx = *state;
	struct nested ns = { 0 };
	struct store_folder_info fi;
	const char *err;

	for (int i = 0; i < 5; i++) {
		char q[8];
		snprintf(q, sizeof(q), "Q%d", i);
		assert_int_equal(deliver(fx, q, "n", 0, NULL), STORE_OK);
	}
	assert_non_null(ns.f = store_folder_open(fx->a, "INBOX", NULL, &err));
	assert_int_equal(store_fetch(ns.f, 1, 0xffffffff, 0, STORE_W_ENVELOPE, nested_cb, &ns), 5);
	assert_int_equal(ns.n, 5);
	assert_int_equal(ns.rc, 0);
	store_folder_info(ns.f, &fi);
	assert_int_equal(fi.unseen, 0);
	store_folder_close(&ns.f);
}

/* Crash between EXPUNGE's commit and its unlink: the file comes back on
 * disk, and the next open removes it rather than giving it a new UID. */
static void
test_expunge_crash(void **state)
{
	struct fx *fx = *state;
	struct store_folder *f;
	struct store_folder_info fi;
	char path[STORE_PATH + 300], keep[STORE_PATH + 300];
	const char *err;

	assert_int_equal(deliver(fx, "Q1", "a", 0, NULL), STORE_OK);
	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	store_flags(f, uids(1, 1), STORE_FLAGS_ADD, STORE_F_DELETED, NULL, 0, NULL, NULL, NULL,
		    &err);
	only_file(fx->root, "cur", path, sizeof(path));
	snprintf(keep, sizeof(keep), "%s/keep", fx->dir);
	assert_int_equal(link(path, keep), 0);
	assert_int_equal(store_expunge(f, NULL, NULL, NULL, &err), 0);
	store_folder_close(&f);
	assert_int_equal(rename(keep, path), 0);
	status(fx, "INBOX", &fi);
	sql(fx, "UPDATE folders SET sync_cur = 0");
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 0);
	assert_int_equal(fi.uidnext, 2);
	assert_int_equal(count_files(fx->root, "cur"), 0);
}

/* --- COPY and MOVE ------------------------------------------------------ */

static void
copy_cb(uint32_t s, uint32_t d, void *arg)
{
	struct fetch_acc *fa = arg;

	fa->uid[fa->n] = s;
	fa->flags[fa->n] = d;
	fa->n++;
}

static void
test_copy_move(void **state)
{
	struct fx *fx = *state;
	struct store_folder *f, *g;
	struct fetch_acc map = { 0 }, ex = { 0 }, fa = { 0 };
	struct store_folder_info fi;
	const char *err;
	uint32_t uv = 0;
	char dir[STORE_PATH];

	for (int i = 0; i < 3; i++) {
		char q[8];
		snprintf(q, sizeof(q), "Q%d", i);
		assert_int_equal(deliver(fx, q, "moved-msg", 0, NULL), STORE_OK);
	}
	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	store_flags(f, uids(2, 2), STORE_FLAGS_ADD, STORE_F_SEEN, "kw", 0, NULL, NULL, NULL, &err);
	assert_int_equal(store_copy(f, uids(1, 2), "Archive", 0, 0, &uv, copy_cb, NULL, &map, &err),
			 STORE_OK);
	status(fx, "Archive", &fi);
	assert_int_equal(uv, fi.uidvalidity);
	assert_int_equal(map.n, 2);
	assert_int_equal(map.uid[0], 1);
	assert_int_equal(map.flags[0], 1);
	assert_int_equal(map.uid[1], 2);
	assert_int_equal(map.flags[1], 2);
	assert_int_equal(fi.messages, 2);
	assert_int_equal(fi.unseen, 1);
	assert_int_equal(store_copy(f, uids(1, 1), "nothere", 0, 0, &uv, NULL, NULL, NULL, &err),
			 STORE_NO_FOLDER);
	assert_int_equal(store_copy(f, uids(1, 3), "Archive", 0, 100, &uv, NULL, NULL, NULL, &err),
			 STORE_OVER_QUOTA);
	/* the same message into the same folder again: a fresh file name */
	memset(&map, 0, sizeof(map));
	assert_int_equal(store_copy(f, uids(1, 1), "Archive", 0, 0, &uv, copy_cb, NULL, &map, &err),
			 STORE_OK);
	assert_int_equal(map.flags[0], 3);
	/* MOVE */
	memset(&map, 0, sizeof(map));
	assert_int_equal(store_copy(f, uids(2, 3), "Trash", 1, 0, &uv, copy_cb, uid_cb, &ex, &err),
			 STORE_OK);
	assert_int_equal(ex.n, 4);   /* copy_cb and uid_cb share the counter */
	store_folder_info(f, &fi);
	assert_int_equal(fi.messages, 1);
	assert_int_equal(count_files(fx->root, "new") + count_files(fx->root, "cur"), 1);
	assert_non_null(g = store_folder_open(fx->a, "Trash", NULL, &err));
	assert_int_equal(store_fetch(g, 1, 10, 0, STORE_W_ENVELOPE, fetch_cb, &fa), 2);
	assert_int_equal(fa.flags[0], STORE_F_SEEN);
	assert_string_equal(fa.kw[0], "kw");
	assert_non_null(strstr(fa.env[0], "moved-msg"));
	folder_dir(fx, ".Trash", dir, sizeof(dir));
	assert_int_equal(count_files(dir, "new") + count_files(dir, "cur"), 2);
	store_folder_close(&g);
	store_folder_close(&f);
}

/* MOVE interrupted before its commit: the destination holds links the
 * index does not know; its next open removes them, the source keeps the
 * message. */
static void
test_move_crash_before_commit(void **state)
{
	struct fx *fx = *state;
	struct store_folder_info fi;
	char src[STORE_PATH + 300], dst[STORE_PATH + 300], dir[STORE_PATH];

	assert_int_equal(deliver(fx, "Q1", "a", 0, NULL), STORE_OK);
	only_file(fx->root, "new", src, sizeof(src));
	folder_dir(fx, ".Trash", dir, sizeof(dir));
	snprintf(dst, sizeof(dst), "%s/new/%s", dir, strrchr(src, '/') + 1);
	assert_int_equal(link(src, dst), 0);
	status(fx, "Trash", &fi);
	assert_int_equal(fi.messages, 0);
	assert_int_equal(count_files(dir, "new"), 0);
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 1);
	/* a foreign file of the same name (another inode) is mail, though */
	write_file(dst, "Subject: mine\n\nx\n");
	status(fx, "Trash", &fi);
	assert_int_equal(fi.messages, 1);
}

/* MOVE interrupted after its commit, before the source's unlink. */
static void
test_move_crash_after_commit(void **state)
{
	struct fx *fx = *state;
	struct store_folder *f;
	struct store_folder_info fi;
	char src[STORE_PATH + 300], dst[STORE_PATH + 300], dir[STORE_PATH];
	const char *err;

	assert_int_equal(deliver(fx, "Q1", "a", 0, NULL), STORE_OK);
	only_file(fx->root, "new", src, sizeof(src));
	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	assert_int_equal(store_copy(f, uids(1, 1), "Trash", 1, 0, NULL, NULL, NULL, NULL, &err), 0);
	store_folder_close(&f);
	folder_dir(fx, ".Trash", dir, sizeof(dir));
	only_file(dir, "new", dst, sizeof(dst));
	assert_int_equal(link(dst, src), 0);   /* as if the unlink never ran */
	sql(fx, "UPDATE folders SET sync_new = 0");
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 0);
	assert_int_equal(fi.uidnext, 2);
	assert_int_equal(count_files(fx->root, "new"), 0);
	status(fx, "Trash", &fi);
	assert_int_equal(fi.messages, 1);
}

/* --- APPEND ------------------------------------------------------------- */

static void
test_append(void **state)
{
	struct fx *fx = *state;
	struct store_append *w;
	struct store_folder *f;
	struct fetch_acc fa = { 0 };
	const char *err;
	const char *msg = "Subject: sent\r\n\r\nline1\r\nline2\r";
	uint32_t uv = 0, uid = 0;
	char dir[STORE_PATH], path[STORE_PATH + 300], buf[256];
	int rc, fd, n;

	assert_null(store_append_begin(fx->a, "nothere", &rc, &err));
	assert_int_equal(rc, STORE_NO_FOLDER);
	assert_non_null(w = store_append_begin(fx->a, "Sent", &rc, &err));
	for (size_t i = 0; i < strlen(msg); i++)   /* byte at a time: CR at every edge */
		assert_int_equal(store_append_write(w, msg + i, 1), 0);
	assert_int_equal(store_append_write(w, "\n", 1), 0);
	assert_int_equal(store_append_commit(&w, STORE_F_SEEN, "$Sent", 1700000000, 60, 0, &uv,
					     &uid, &err),
			 STORE_OK);
	assert_null(w);
	assert_int_equal(uid, 1);
	assert_true(uv > 0);
	folder_dir(fx, ".Sent", dir, sizeof(dir));
	assert_int_equal(count_files(dir, "tmp"), 0);
	only_file(dir, "cur", path, sizeof(path));
	assert_non_null(strstr(path, ":2,S"));
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n] = '\0';
	assert_string_equal(buf, "Subject: sent\n\nline1\nline2\n");
	assert_non_null(f = store_folder_open(fx->a, "Sent", NULL, &err));
	store_fetch(f, 1, 1, 0, STORE_W_ENVELOPE, fetch_cb, &fa);
	assert_int_equal(fa.size[0], strlen(msg) + 1);
	assert_string_equal(fa.kw[0], "$Sent");
	store_folder_close(&f);

	/* over quota: nothing left behind */
	assert_non_null(w = store_append_begin(fx->a, "Sent", &rc, &err));
	store_append_write(w, msg, strlen(msg));
	assert_int_equal(store_append_commit(&w, 0, NULL, 0, 0, 10, &uv, &uid, &err),
			 STORE_TOO_BIG);
	assert_non_null(w = store_append_begin(fx->a, "Sent", &rc, &err));
	store_append_write(w, msg, strlen(msg));
	assert_int_equal(store_append_commit(&w, 0, NULL, 0, 0, 40, &uv, &uid, &err),
			 STORE_OVER_QUOTA);
	assert_non_null(w = store_append_begin(fx->a, "Sent", &rc, &err));
	store_append_abort(&w);
	assert_null(w);
	assert_int_equal(count_files(dir, "tmp"), 0);
	assert_int_equal(count_files(dir, "new"), 0);
}

/* --- \Recent ------------------------------------------------------------ */

static void
test_recent(void **state)
{
	struct fx *fx = *state;
	struct store_folder *f, *g;
	struct store_folder_info fi;
	uint32_t first;
	const char *err;

	deliver(fx, "Q1", "a", 0, NULL);
	deliver(fx, "Q2", "b", 0, NULL);
	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	assert_non_null(g = store_folder_open(fx->a, "INBOX", NULL, &err));
	store_folder_info(f, &fi);
	assert_int_equal(fi.recent, 2);
	assert_int_equal(store_folder_take_recent(f, &first), 0);
	assert_int_equal(first, 1);
	assert_int_equal(store_folder_take_recent(g, &first), 0);
	assert_int_equal(first, 3);   /* nothing left for the second session */
	deliver(fx, "Q3", "c", 0, NULL);
	store_folder_info(g, &fi);
	assert_int_equal(fi.recent, 1);
	store_folder_close(&f);
	store_folder_close(&g);
}

/* --- watches ------------------------------------------------------------ */

struct watch_fx {
	struct event_base *base;
	int fired;
};

static void
watch_cb(void *arg)
{
	struct watch_fx *w = arg;

	w->fired++;
	event_base_loopbreak(w->base);
}

static void *
notify_thread(void *arg)
{
	struct store *s = arg;

	store_notify(s, ADDR);
	return NULL;
}

static void
test_watch(void **state)
{
	struct fx *fx = *state;
	struct store_settings set = { fx->dir, 86400, NULL };
	struct watch_fx w = { 0 };
	struct store *s;
	struct store_watch *wt;
	struct store_account *a1, *a2;
	const char *err;
	pthread_t th;

	evthread_use_pthreads();
	w.base = event_base_new();
	assert_non_null(s = store_new(&set, w.base, &err));
	/* the loop shares one handle per account */
	assert_non_null(a1 = store_account_open(s, ADDR, &err));
	assert_non_null(a2 = store_account_open(s, ADDR, &err));
	assert_ptr_equal(a1, a2);
	store_account_close(&a2);
	wt = store_watch(s, ADDR, watch_cb, &w);
	pthread_create(&th, NULL, notify_thread, s);
	event_base_dispatch(w.base);
	pthread_join(th, NULL);
	assert_int_equal(w.fired, 1);
	/* a change by another handle (another process, for SQLite) */
	assert_int_equal(deliver(fx, "Q1", "a", 0, NULL), STORE_OK);
	event_base_dispatch(w.base);
	assert_int_equal(w.fired, 2);
	store_unwatch(&wt);
	assert_null(wt);
	store_account_close(&a1);
	store_free(&s);
	event_base_free(w.base);
}

/* --- deliveries sharing a stripe's delivery handle ----------------------- */

struct dthr {
	struct store *s;
	const char *address;
	int first, n, ok;
};

static void *
deliver_thread(void *arg)
{
	struct dthr *d = arg;

	for (int i = 0; i < d->n; i++) {
		char qid[32];
		long long len;
		int fd = msg_fd("t", &len);
		const char *err = NULL;

		snprintf(qid, sizeof(qid), "T%04d", d->first + i);
		if (store_deliver(d->s, d->address, NULL, qid, NULL, fd, 0, len, 0, NULL, &err) ==
		    STORE_OK)
			d->ok++;
		close(fd);
	}
	return NULL;
}

/* Four threads deliver into two addresses of one stripe at once: the
 * handle changes hands between them all the time, and each mailbox gets
 * exactly its own messages with UIDs 1..n. A repeated queue id is still
 * a duplicate. */
static void
test_deliver_shared_handle(void **state)
{
	struct fx *fx = *state;
	char other[64];
	struct dthr d[4];
	pthread_t t[4];
	const char *addr[2] = { ADDR, other }, *err;

	for (int i = 0;; i++) {
		snprintf(other, sizeof(other), "u%d@example.com", i);
		if (store_address_stripe(other) == store_address_stripe(ADDR))
			break;
	}
	for (int i = 0; i < 4; i++) {
		d[i] = (struct dthr){ fx->s, addr[i % 2], i * 100, 25, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, deliver_thread, &d[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(d[i].ok, 25);
	}
	for (int k = 0; k < 2; k++) {
		struct store_account *a = store_account_open(fx->s, addr[k], &err);
		struct store_folder_info fi;
		long long len;
		int fd = msg_fd("again", &len);

		assert_non_null(a);
		assert_int_equal(store_folder_status(a, "INBOX", &fi, &err), 0);
		assert_int_equal(fi.messages, 50);
		assert_int_equal(fi.uidnext, 51);
		store_account_close(&a);
		assert_int_equal(store_deliver(fx->s, addr[k], NULL, k ? "T0101" : "T0000", NULL,
					       fd, 0, len, 0, NULL, &err),
				 STORE_DUPLICATE);
		close(fd);
	}
}

/* --- account removal ---------------------------------------------------- */

static void
test_account_remove(void **state)
{
	struct fx *fx = *state;
	char moved[STORE_PATH];
	struct stat sb;
	struct store_account *a;
	struct store_folder_info fi;
	const char *err;

	deliver(fx, "Q1", "a", 0, NULL);
	store_account_close(&fx->a);
	assert_int_equal(store_account_remove(fx->s, ADDR, moved, sizeof(moved)), 0);
	assert_non_null(strstr(moved, "/mail/.removed/example.com/alice."));
	assert_int_equal(stat(moved, &sb), 0);
	assert_int_equal(stat(fx->root, &sb), -1);
	assert_int_equal(store_account_remove(fx->s, ADDR, moved, sizeof(moved)), 0);
	assert_string_equal(moved, "");
	/* another process removed it while this one kept a handle */
	{
		struct store_settings set2 = { fx->dir, 86400, NULL };
		struct store *s2 = store_new(&set2, NULL, &err);

		assert_non_null(a = store_account_open(fx->s, ADDR, &err));
		deliver(fx, "Q2", "b", 0, NULL);
		store_account_close(&a);   /* kept by fx->s */
		assert_int_equal(store_account_remove(s2, ADDR, moved, sizeof(moved)), 0);
		assert_non_null(strstr(moved, "/mail/.removed/"));
		store_free(&s2);
		assert_int_equal(deliver(fx, "Q3", "c", 0, NULL), STORE_OK);
		assert_non_null(a = store_account_open(fx->s, ADDR, &err));
		assert_int_equal(store_folder_status(a, "INBOX", &fi, &err), 0);
		assert_int_equal(fi.messages, 1);
		store_account_close(&a);
		assert_int_equal(store_account_remove(fx->s, ADDR, moved, sizeof(moved)), 0);
	}
	/* a new user of that name starts empty */
	assert_non_null(a = store_account_open(fx->s, ADDR, &err));
	assert_int_equal(store_folder_status(a, "INBOX", &fi, &err), 0);
	assert_int_equal(fi.messages, 0);
	fx->a = a;
}


/* --- RENAME, crash leftovers of folder commands, verify ----------------- */

static void
append_one(struct fx *fx, const char *folder)
{
	struct store_append *w;
	const char *err;
	int rc;

	assert_non_null(w = store_append_begin(fx->a, folder, &rc, &err));
	store_append_write(w, "Subject: x\r\n\r\nbody\r\n", 21);
	assert_int_equal(store_append_commit(&w, 0, NULL, 0, 0, 0, NULL, NULL, &err), STORE_OK);
}

static void
reopen(struct fx *fx)
{
	const char *err;

	store_account_close(&fx->a);
	assert_non_null(fx->a = store_account_open(fx->s, ADDR, &err));
}

static int
dir_exists(struct fx *fx, const char *disk)
{
	char p[STORE_PATH + 300];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", fx->root, disk);
	return stat(p, &sb) == 0;
}

static void
test_rename(void **state)
{
	struct fx *fx = *state;
	struct store_folder_info fi, fi2;
	struct list_acc l = { 0 };
	const char *err;

	assert_int_equal(store_folder_create(fx->a, "a", 0, &err), 0);
	assert_int_equal(store_folder_create(fx->a, "a/b", 0, &err), 0);
	assert_int_equal(store_folder_subscribe(fx->a, "a/b", 1, &err), 0);
	append_one(fx, "a/b");
	status(fx, "a/b", &fi);
	assert_int_equal(store_folder_rename(fx->a, "a", "Sent", &err), STORE_EXISTS);
	assert_int_equal(store_folder_rename(fx->a, "nothere", "z", &err), STORE_NO_FOLDER);
	assert_int_equal(store_folder_rename(fx->a, "a", "a/c", &err), STORE_BAD_NAME);
	assert_int_equal(store_folder_rename(fx->a, "a", "../z", &err), STORE_BAD_NAME);
	assert_int_equal(store_folder_rename(fx->a, "a", "x/y", &err), 0);
	assert_false(dir_exists(fx, ".a"));
	assert_false(dir_exists(fx, ".a.b"));
	assert_true(dir_exists(fx, ".x.y/cur"));
	assert_true(dir_exists(fx, ".x.y.b/cur"));
	status(fx, "x/y/b", &fi2);
	assert_int_equal(fi2.messages, 1);
	assert_int_equal(fi2.uidvalidity, fi.uidvalidity);
	assert_int_equal(fi2.uidnext, fi.uidnext);
	assert_int_equal(store_folder_list(fx->a, list_cb, &l), 0);
	assert_int_equal(l.n, 9);
	assert_string_equal(l.names[6], "x");
	assert_true(l.noselect[6]);
	assert_string_equal(l.names[8], "x/y/b");
	assert_true(l.sub[8]);
}

static void
test_rename_inbox(void **state)
{
	struct fx *fx = *state;
	struct store_folder_info fi;
	const char *err;

	deliver(fx, "Q1", "a", 0, NULL);
	deliver(fx, "Q2", "b", 0, NULL);
	assert_int_equal(store_folder_rename(fx->a, "inbox", "Old", &err), 0);
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 0);
	assert_int_equal(fi.uidnext, 3);
	status(fx, "Old", &fi);
	assert_int_equal(fi.messages, 2);
	/* the moved message keeps its qid: a repeated delivery is found */
	assert_int_equal(deliver(fx, "Q1", "a", 0, NULL), STORE_DUPLICATE);
}

/* RENAME committed, directories not yet renamed: an open in between
 * expunges nothing, the next account open finishes the rename. */
static void
test_rename_crash(void **state)
{
	struct fx *fx = *state;
	struct store_folder_info fi;
	const char *err;

	assert_int_equal(store_folder_create(fx->a, "r", 0, &err), 0);
	append_one(fx, "r");
	sql(fx, "UPDATE folders SET name = 's', disk = '.s', disk_old = '.r' WHERE name = 'r'");
	status(fx, "s", &fi);
	assert_int_equal(fi.messages, 1);
	reopen(fx);
	assert_false(dir_exists(fx, ".r"));
	assert_true(dir_exists(fx, ".s/cur"));
	sql(fx, "UPDATE folders SET sync_new = 0");
	status(fx, "s", &fi);
	assert_int_equal(fi.messages, 1);
}

/* DELETE committed, directory still there: removed at the next account
 * open, never adopted back as a folder. */
static void
test_delete_crash_and_adopt(void **state)
{
	struct fx *fx = *state;
	struct store_folder_info fi;
	struct list_acc l = { 0 };
	char p[STORE_PATH + 64];
	const char *err;

	assert_int_equal(store_folder_create(fx->a, "d", 0, &err), 0);
	append_one(fx, "d");
	sql(fx, "DELETE FROM messages WHERE folder = (SELECT id FROM folders WHERE name = 'd');"
		"DELETE FROM folders WHERE name = 'd'; INSERT INTO trash VALUES('.d', 'all')");
	/* and a Maildir++ folder another program made */
	snprintf(p, sizeof(p), "%s/.Foreign.sub", fx->root);
	assert_int_equal(maildir_create(p), 0);
	snprintf(p, sizeof(p), "%s/.Foreign.sub/cur/1.M1.x:2,S", fx->root);
	write_file(p, "Subject: foreign\n\nx\n");
	/* a link to another account's Maildir is never adopted */
	{
		char bob[STORE_PATH], ln[STORE_PATH + 16];

		maildir_path(fx->dir, "bob@example.com", bob, sizeof(bob));
		assert_int_equal(maildir_create(bob), 0);
		snprintf(ln, sizeof(ln), "%s/.Bob", fx->root);
		assert_int_equal(symlink(bob, ln), 0);
	}
	reopen(fx);
	assert_false(dir_exists(fx, ".d"));
	assert_int_equal(store_folder_list(fx->a, list_cb, &l), 0);
	assert_int_equal(l.n, 8);
	assert_string_equal(l.names[1], "Archive");
	assert_string_equal(l.names[3], "Foreign");
	assert_true(l.noselect[3]);
	assert_string_equal(l.names[4], "Foreign/sub");
	status(fx, "Foreign/sub", &fi);
	assert_int_equal(fi.messages, 1);
	assert_int_equal(fi.unseen, 0);
}

static void
test_verify(void **state)
{
	struct fx *fx = *state;
	char path[STORE_PATH + 300], p[STORE_PATH + 64];
	struct store_folder_info fi;
	const char *err;
	char *buf = NULL;
	size_t blen = 0;
	FILE *rep;

	deliver(fx, "Q1", "a", 0, NULL);
	deliver(fx, "Q2", "b", 0, NULL);
	deliver(fx, "Q3", "c", 0, NULL);
	assert_int_equal(store_verify(fx->s, ADDR, 0, NULL, &err), 0);
	snprintf(path, sizeof(path), "%s/new/Q2.Q.%s", fx->root, fx->s->host);
	assert_int_equal(unlink(path), 0);
	snprintf(p, sizeof(p), "%s/new/9.M9.other", fx->root);
	write_file(p, "Subject: z\n\nz\n");
	sql(fx, "UPDATE messages SET size = 1 WHERE id & 4294967295 = 3;"
		"UPDATE folders SET uidnext = 2 WHERE name = 'INBOX'");
	rep = open_memstream(&buf, &blen);
	/* and the counters of the folder and the account disagree with the
	 * wrong size */
	assert_int_equal(store_verify(fx->s, ADDR, 0, rep, &err), 6);
	fclose(rep);
	assert_non_null(strstr(buf, "counters wrong for folder INBOX"));
	assert_non_null(strstr(buf, "account counters wrong"));
	assert_non_null(strstr(buf, "9.M9.other has no index row"));
	assert_non_null(strstr(buf, "UID 2: file"));
	assert_non_null(strstr(buf, "UID 3: size 1 in the index"));
	assert_non_null(strstr(buf, "UIDNEXT 2 is not above UID 3"));
	free(buf);
	assert_true(store_verify(fx->s, ADDR, 1, NULL, &err) >= 4);
	assert_int_equal(store_verify(fx->s, ADDR, 0, stderr, &err), 0);
	status(fx, "INBOX", &fi);
	assert_int_equal(fi.messages, 3);
	assert_int_equal(fi.uidnext, 5);   /* the unknown file got UID 4 */
	assert_int_equal(store_verify(fx->s, "nobody@example.com", 0, NULL, &err), -1);
}

/* --- kill -9 at any moment ------------------------------------------------ */

/* The child delivers, flags, moves back and forth, copies and expunges
 * copies, appends, renames a folder to and fro; it reports each qid whose
 * delivery returned. */
static void
crash_child(const char *dir, int out, int round)
{
	struct store_settings set = { dir, 86400, NULL };
	const char *err;
	struct store *s = store_new(&set, NULL, &err);
	struct store_account *a = store_account_open(s, ADDR, &err);

	if (a == NULL)
		_exit(1);
	for (int i = 0;; i++) {
		struct fx fx = { .s = s, .a = a };
		struct store_folder *f;
		struct store_append *w;
		char qid[32];
		uint32_t uid;
		int rc;

		snprintf(qid, sizeof(qid), "R%dN%d", round, i);
		if (deliver(&fx, qid, "crash", 0, &uid) == STORE_OK &&
		    write(out, qid, sizeof(qid)) != sizeof(qid))
			_exit(1);
		if ((f = store_folder_open(a, i % 2 ? "INBOX" : "Archive", NULL, &err)) != NULL) {
			store_flags(f, uids(1, 0xffffffff), i % 3 ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE,
				    STORE_F_SEEN | STORE_F_FLAGGED, "k", 0, NULL, NULL, NULL, &err);
			store_copy(f, uids(1, 0xffffffff), i % 2 ? "Archive" : "INBOX", 1, 0, NULL,
				   NULL, NULL, NULL, &err);
			store_folder_close(&f);
		}
		if ((f = store_folder_open(a, "Archive", NULL, &err)) != NULL) {
			store_copy(f, uids(1, 0xffffffff), "Trash", 0, 0, NULL, NULL, NULL, NULL, &err);
			store_folder_close(&f);
		}
		if ((f = store_folder_open(a, "Trash", NULL, &err)) != NULL) {
			store_flags(f, uids(1, 0xffffffff), STORE_FLAGS_ADD, STORE_F_DELETED, NULL, 0,
				    NULL, NULL, NULL, &err);
			store_expunge(f, NULL, NULL, NULL, &err);
			store_folder_close(&f);
		}
		if ((w = store_append_begin(a, "Drafts", &rc, &err)) != NULL) {
			store_append_write(w, "Subject: d\r\n\r\nx\r\n", 17);
			store_append_commit(&w, STORE_F_DRAFT, NULL, 0, 0, 0, NULL, NULL, &err);
		}
		store_folder_rename(a, i % 2 ? "Junk2" : "Junk", i % 2 ? "Junk" : "Junk2", &err);
	}
}

static int
crash_qid_count(struct fx *fx, const char *qid)
{
	char q[128];

	snprintf(q, sizeof(q), "SELECT count(*) FROM messages WHERE qid = '%s'", qid);
	return (int)sql_int(fx, q);
}

static int
crash_open_all(const struct store_folder_entry *e, void *arg)
{
	struct fx *fx = arg;
	struct store_folder *f;
	const char *err;

	if (!e->noselect) {
		f = store_folder_open(fx->a, e->name, NULL, &err);
		assert_non_null(f);
		store_folder_close(&f);
	}
	return 0;
}

static void
test_kill9(void **state)
{
	struct fx *fx = *state;
	const char *env = getenv("TANDEM_STORE_KILLS");
	int rounds = env ? atoi(env) : 12;
	static char qids[4096][32];
	int nq = 0;
	const char *err;

	srand((unsigned)getpid());
	store_account_close(&fx->a);
	for (int r = 0; r < rounds; r++) {
		int p[2];
		pid_t pid;
		char q[32];

		assert_int_equal(pipe(p), 0);
		if ((pid = fork()) == 0) {
			close(p[0]);
			crash_child(fx->dir, p[1], r);
		}
		close(p[1]);
		/* let it get somewhere (one delivery at least), then kill it at a
		 * moment nobody chose */
		if (read(p[0], q, sizeof(q)) == sizeof(q) && nq < 4096)
			memcpy(qids[nq++], q, sizeof(q));
		usleep((useconds_t)(rand() % 200000));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		while (read(p[0], q, sizeof(q)) == sizeof(q))
			if (nq < 4096)
				memcpy(qids[nq++], q, sizeof(q));
		close(p[0]);
		/* what the next process sees: every open reconciles */
		assert_non_null(fx->a = store_account_open(fx->s, ADDR, &err));
		assert_int_equal(store_folder_list(fx->a, crash_open_all, fx), 0);
		assert_int_equal(store_verify(fx->s, ADDR, 0, stderr, &err), 0);
		for (int i = 0; i < nq; i++)
			assert_int_equal(crash_qid_count(fx, qids[i]), 1);
		store_account_close(&fx->a);
	}
	assert_non_null(fx->a = store_account_open(fx->s, ADDR, &err));
	fprintf(stderr, "kill -9: %d rounds, %d deliveries confirmed, none lost or doubled\n",
		rounds, nq);
}

/* --- size --------------------------------------------------------------- */

static int
count_cb(const struct store_msg *m, void *arg)
{
	(*(long long *)arg) += m->size;
	return 0;
}

static double
cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
test_many(void **state)
{
	struct fx *fx = *state;
	const char *env = getenv("TANDEM_STORE_BENCH");
	int n = env ? atoi(env) : 2000;
	struct store_folder *f;
	struct store_folder_info fi;
	struct store_account *a;
	const char *err;
	long long total = 0;
	double t0, t1, t2, t3, t4, t5, t6, c0, c1, c2, c3, c4, c5, c6;
	char p[STORE_PATH + 64];

	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof(p), "%s/new/%d.M%d.bench", fx->root, 1000000 + i, i);
		write_file(p, "From: a@b\nSubject: bench\n\nbody line\n");
	}
	c0 = cpu_ms();
	t0 = now_ms();
	assert_non_null(f = store_folder_open(fx->a, "INBOX", NULL, &err));
	t1 = now_ms();
	c1 = cpu_ms();
	store_folder_info(f, &fi);
	assert_int_equal(fi.messages, n);
	store_folder_close(&f);
	store_account_close(&fx->a);
	/* warm: a new handle, as a new session would get */
	t2 = now_ms();
	c2 = cpu_ms();
	assert_non_null(a = store_account_open(fx->s, ADDR, &err));
	sql(fx, "UPDATE folders SET sync_new = 1");   /* force the rescan path */
	assert_non_null(f = store_folder_open(a, "INBOX", NULL, &err));
	t3 = now_ms();
	c3 = cpu_ms();
	store_folder_close(&f);
	store_account_close(&a);
	/* as a new session: account and folder open, nothing changed */
	sql(fx, "UPDATE folders SET sync_new = 0");
	assert_non_null(a = store_account_open(fx->s, ADDR, &err));
	assert_non_null(f = store_folder_open(a, "INBOX", NULL, &err));   /* records mtimes */
	store_folder_close(&f);
	store_account_close(&a);
	{
		struct timespec old = { time(NULL) - 10, 0 }, ts[2] = { old, old };
		char d[STORE_PATH + 8];

		/* make the directories old enough to be trusted */
		snprintf(d, sizeof(d), "%s/new", fx->root);
		utimensat(AT_FDCWD, d, ts, 0);
		snprintf(d, sizeof(d), "%s/cur", fx->root);
		utimensat(AT_FDCWD, d, ts, 0);
		assert_non_null(a = store_account_open(fx->s, ADDR, &err));
		assert_non_null(f = store_folder_open(a, "INBOX", NULL, &err));
		store_folder_close(&f);
		store_account_close(&a);
	}
	t5 = now_ms();
	c5 = cpu_ms();
	assert_non_null(a = store_account_open(fx->s, ADDR, &err));
	assert_non_null(f = store_folder_open(a, "INBOX", NULL, &err));
	t6 = now_ms();
	c6 = cpu_ms();
	assert_int_equal(store_fetch(f, 1, 0xffffffff, 0, 0, count_cb, &total), n);
	t4 = now_ms();
	c4 = cpu_ms();
	assert_int_equal(total, (long long)n * strlen("From: a@b\r\nSubject: bench\r\n\r\nbody line\r\n"));
	fprintf(stderr, "store bench: %d messages: first open (index the files) %.1f ms (cpu %.1f);"
		" open with a rescan %.1f ms (cpu %.1f); account + folder open, warm %.1f ms (cpu %.1f);"
		" fetch of flags+sizes %.1f ms (cpu %.1f)\n", n, t1 - t0, c1 - c0, t3 - t2, c3 - c2,
		t6 - t5, c6 - c5, t4 - t6, c4 - c6);
	store_folder_close(&f);
	fx->a = a;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_check),
		cmocka_unit_test(test_flag_names),
		cmocka_unit_test_setup_teardown(test_name_escape, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_list_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_crash_before_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_foreign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_after_own_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags_expunge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expunge_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fetch_nested, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_crash_before_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_crash_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver_shared_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_account_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_inbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_crash_and_adopt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill9, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
