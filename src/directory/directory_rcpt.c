/*
 * directory_rcpt: what a recipient address names, for the SMTP server at
 * RCPT time and for local delivery. One set of rules serves both, so an
 * address accepted at RCPT is the one delivered:
 *
 *   1. the address itself: a user, else an alias ("alice+tag@x" as is,
 *      when somebody has that name: exact matches win);
 *   2. subaddressing: its base address ("alice@x" for "alice+tag@x", the
 *      local part cut at the first recipient delimiter): a user, else an
 *      alias;
 *   3. the domain's catch-all ("@x").
 *
 * Aliases are followed to their final destinations (local mailboxes,
 * foreign addresses), at most 10 deep, each alias once per expansion. An
 * alias met again while it is being expanded is a loop: refused when an
 * alias is added, reported by the RCPT lookup when the loop leaves the
 * recipient with nowhere to go.
 *
 * Public: directory_rcpt_check, directory_rcpt_lookup, directory_resolve,
 * directory_expand, directory_postmaster_address. Module-internal:
 * dir_base, dir_alias_loop_check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory/directory_int.h"
#include "util/xalloc.h"

#define DIR_EXPAND_DEPTH	10

/* What an address names (rules 1-3). */
enum dir_kind {
	DIR_K_FOREIGN,		/* not one of our domains */
	DIR_K_NONE,		/* ours, and nobody takes it */
	DIR_K_USER,		/* key: the mailbox */
	DIR_K_ALIAS,		/* key: the alias ("sales@x") */
	DIR_K_CATCHALL		/* key: "@x" */
};

int
dir_base(const char *address, const char *delim, char *buf, size_t len)
{
	const char *at = strrchr(address, '@');
	size_t cut;

	if (at == NULL || delim[0] == '\0' || address[0] == '"')
		return 0;
	cut = strcspn(address, delim);
	if (cut == 0 || address + cut >= at)
		return 0;
	if (snprintf(buf, len, "%.*s%s", (int)cut, address, at) >= (int)len)
		return 0;
	return 1;
}

/* 1 user, 2 alias, 0 neither, -1 for the lower-cased address a. */
static int
dir_name_kind(struct dir_conn *c, const char *a)
{
	return dir_int(c, "SELECT CASE WHEN EXISTS(SELECT 1 FROM users WHERE address = ?1) THEN 1"
		       " WHEN EXISTS(SELECT 1 FROM aliases WHERE alias = ?1) THEN 2 ELSE 0 END",
		       1, a);
}

/* Rules 1-3 for the lower-cased address a (with an '@' and a non-empty
 * local part): *kind_r, and key_r (DIR_ADDR_MAX bytes) for a user, alias
 * or catch-all. 0 or -1. */
static int
dir_resolve_key(struct dir_conn *c, const char *a, const char *delim,
		enum dir_kind *kind_r, char *key_r)
{
	const char *at = strrchr(a, '@');
	char base[DIR_ADDR_MAX];
	int r;

	*kind_r = DIR_K_NONE;
	if ((r = dir_is_local(c, at + 1)) <= 0) {
		*kind_r = DIR_K_FOREIGN;
		return r;
	}
	snprintf(key_r, DIR_ADDR_MAX, "%s", a);
	if ((r = dir_name_kind(c, a)) == 0 && dir_base(a, delim, base, sizeof(base))) {
		snprintf(key_r, DIR_ADDR_MAX, "%s", base);
		r = dir_name_kind(c, base);
	}
	if (r < 0)
		return -1;
	if (r > 0) {
		*kind_r = r == 1 ? DIR_K_USER : DIR_K_ALIAS;
		return 0;
	}
	snprintf(key_r, DIR_ADDR_MAX, "%s", at);
	if ((r = dir_int(c, "SELECT EXISTS(SELECT 1 FROM aliases WHERE alias = ?)", 1, at)) < 0)
		return -1;
	if (r == 1)
		*kind_r = DIR_K_CATCHALL;
	return 0;
}

/* ---- expansion ---- */

struct dir_hop {
	char *key;		/* the alias being expanded */
	char *via;		/* the target address that led to it */
};

struct dir_walk {
	struct dir_conn *c;
	char delim[DIR_DELIM_MAX + 1];
	void (*fn)(const char *dest, const char *rcpt, int is_local, void *arg);
	void (*fn_old)(const char *dest, int is_local, void *arg);
	void *arg;
	char **done;		/* "a:" alias keys expanded, "d:" destinations emitted */
	size_t ndone;
	struct dir_hop *path;	/* aliases being expanded, outermost first */
	size_t npath;
	int unbounded;		/* the loop check at alias add: no depth limit */
	int count;
	int loop;		/* an alias was met again inside its own expansion */
	int too_deep;
	char loop_text[DIR_ERR_MAX / 2];	/* the first loop: "a@x -> b@x -> a@x" */
};

/* 1 when kind:name was met before in this walk, else remembers it. */
static int
dir_walk_seen(struct dir_walk *w, char kind, const char *name)
{
	for (size_t i = 0; i < w->ndone; i++)
		if (w->done[i][0] == kind && strcmp(w->done[i] + 2, name) == 0)
			return 1;
	w->done = xrealloc(w->done, (w->ndone + 1) * sizeof(*w->done));
	w->done[w->ndone++] = xasprintf("%c:%s", kind, name);
	return 0;
}

static void
dir_walk_emit(struct dir_walk *w, const char *dest, const char *rcpt, int is_local)
{
	if (w->fn != NULL)
		w->fn(dest, rcpt, is_local, w->arg);
	else if (w->fn_old != NULL)
		w->fn_old(dest, is_local, w->arg);
	w->count++;
}

static void
dir_walk_cat(struct dir_walk *w, const char *s)
{
	size_t used = strlen(w->loop_text);

	snprintf(w->loop_text + used, sizeof(w->loop_text) - used, "%s", s);
}

/* key (reached through via) is on the path: write the loop down. */
static void
dir_walk_loop(struct dir_walk *w, size_t start, const char *via, const char *key)
{
	if (w->loop++)
		return;
	w->loop_text[0] = '\0';
	dir_walk_cat(w, w->path[start].key);
	for (size_t k = start + 1; k <= w->npath; k++) {
		const char *v = k < w->npath ? w->path[k].via : via;
		const char *kk = k < w->npath ? w->path[k].key : key;

		dir_walk_cat(w, " -> ");
		dir_walk_cat(w, v);
		if (strcmp(v, kk) != 0) {
			dir_walk_cat(w, " -> ");
			dir_walk_cat(w, kk);
		}
	}
}

static int dir_walk_addr(struct dir_walk *w, const char *address, int depth);

/* Expand the alias (or catch-all) key, reached through via. */
static int
dir_walk_alias(struct dir_walk *w, const char *key, const char *via, int depth)
{
	char **t;
	int n, rc = 0;

	for (size_t i = 0; i < w->npath; i++) {
		if (strcmp(w->path[i].key, key) == 0) {
			dir_walk_loop(w, i, via, key);
			return 0;
		}
	}
	if (dir_walk_seen(w, 'a', key))
		return 0;	/* reached twice, not in a circle: once is enough */
	n = dir_strings(w->c, &t, "SELECT target FROM aliases WHERE alias = ? ORDER BY rowid", 1, key);
	w->path = xrealloc(w->path, (w->npath + 1) * sizeof(*w->path));
	w->path[w->npath].key = xstrdup(key);
	w->path[w->npath].via = xstrdup(via);
	w->npath++;
	for (int i = 0; i < n && rc == 0; i++)
		rc = dir_walk_addr(w, t[i], depth + 1);
	w->npath--;
	free(w->path[w->npath].key);
	free(w->path[w->npath].via);
	dir_strings_free(t);
	return n < 0 ? -1 : rc;
}

static int
dir_walk_addr(struct dir_walk *w, const char *address, int depth)
{
	char *a = dir_lowdup(address), *at = strrchr(a, '@'), key[DIR_ADDR_MAX], show[80];
	enum dir_kind kind;
	int rc = -1;

	if (at == NULL || at == a) {	/* no mailbox: nothing to deliver */
		rc = 0;
		goto out;
	}
	if (depth > DIR_EXPAND_DEPTH && !w->unbounded) {
		w->too_deep = 1;
		dir_seterr(w->c, "aliases nested deeper than %d at %s",
			   DIR_EXPAND_DEPTH, dir_show(address, show, sizeof(show)));
		goto out;
	}
	if (dir_resolve_key(w->c, a, w->delim, &kind, key) != 0)
		goto out;
	rc = 0;
	switch (kind) {
	case DIR_K_FOREIGN: {
		/* Its local part is the foreign host's business. */
		char *dest = xstrdup(address);

		dir_lower(strrchr(dest, '@'));
		if (!dir_walk_seen(w, 'd', a))
			dir_walk_emit(w, dest, dest, 0);
		free(dest);
		break;
	}
	case DIR_K_USER: {
		/* The recipient as it came (domain folded): alice+tag@x, so
		 * the mailbox's owner can tell what the sender wrote. */
		char *rcpt = xstrdup(address);

		dir_lower(strrchr(rcpt, '@'));
		if (!dir_walk_seen(w, 'd', key))
			dir_walk_emit(w, key, rcpt, 1);
		free(rcpt);
		break;
	}
	case DIR_K_ALIAS:
	case DIR_K_CATCHALL:
		rc = dir_walk_alias(w, key, a, depth);
		break;
	case DIR_K_NONE:
		break;
	}
out:
	free(a);
	return rc;
}

static void
dir_walk_free(struct dir_walk *w)
{
	for (size_t i = 0; i < w->ndone; i++)
		free(w->done[i]);
	free(w->done);
	free(w->path);
}

int
directory_resolve(struct directory *d, const char *address,
		  void (*fn)(const char *dest, const char *rcpt, int is_local, void *arg),
		  void *arg, const char **error_r)
{
	struct dir_walk w = { .fn = fn, .arg = arg };
	int rc;

	if ((w.c = dir_conn(d)) == NULL) {
		if (error_r != NULL)
			*error_r = directory_error(d);
		return -1;
	}
	dir_delim(d, w.delim);
	rc = dir_walk_addr(&w, address, 0);
	dir_walk_free(&w);
	if (rc < 0 && error_r != NULL)
		*error_r = w.c->err;
	return rc < 0 ? -1 : w.count;
}

int
directory_expand(struct directory *d, const char *address,
		 void (*fn)(const char *dest, int is_local, void *arg), void *arg)
{
	struct dir_walk w = { .fn_old = fn, .arg = arg };
	int rc;

	if ((w.c = dir_conn(d)) == NULL)
		return -1;
	dir_delim(d, w.delim);
	rc = dir_walk_addr(&w, address, 0);
	dir_walk_free(&w);
	return rc < 0 ? -1 : w.count;
}

int
dir_alias_loop_check(struct dir_conn *c, const char *alias)
{
	struct dir_walk w = { .c = c, .unbounded = 1 };
	int rc;

	dir_delim(c->dir, w.delim);
	rc = dir_walk_alias(&w, alias, alias, 0);
	dir_walk_free(&w);
	if (rc == 0 && w.loop) {
		dir_seterr(c, "alias %s would make a loop: %s", alias, w.loop_text);
		rc = -1;
	}
	return rc;
}

/* ---- the RCPT decisions ---- */

enum dir_rcpt
directory_rcpt_check(struct directory *d, const char *address)
{
	struct dir_conn *c = dir_conn(d);
	char *a, *at, delim[DIR_DELIM_MAX + 1], key[DIR_ADDR_MAX];
	enum dir_rcpt res = DIR_RCPT_TEMPFAIL;
	enum dir_kind kind;
	int r;

	if (c == NULL)
		return DIR_RCPT_TEMPFAIL;
	a = dir_lowdup(address);
	if ((at = strrchr(a, '@')) == NULL) {
		res = DIR_RCPT_NOT_LOCAL;
	} else if (at == a) {
		/* "@domain" names the catch-all, nobody's mailbox */
		if ((r = dir_is_local(c, at + 1)) >= 0)
			res = r ? DIR_RCPT_UNKNOWN : DIR_RCPT_NOT_LOCAL;
	} else {
		dir_delim(d, delim);
		if (dir_resolve_key(c, a, delim, &kind, key) == 0)
			res = kind == DIR_K_FOREIGN ? DIR_RCPT_NOT_LOCAL :
			      kind == DIR_K_NONE ? DIR_RCPT_UNKNOWN : DIR_RCPT_LOCAL;
	}
	free(a);
	return res;
}

/* An alias or catch-all at RCPT: accepted only when it leads somewhere. */
static enum dir_lookup
dir_lookup_alias(struct dir_conn *c, const char *a, const char *delim, enum dir_kind kind,
		 struct dir_rcpt_result *r)
{
	struct dir_walk w = { .c = c };
	int rc;

	memcpy(w.delim, delim, sizeof(w.delim));
	rc = dir_walk_addr(&w, a, 0);
	dir_walk_free(&w);
	r->ndest = w.count;
	r->loop = w.loop > 0;
	if (rc < 0 && !w.too_deep)
		return DIR_LOOKUP_TEMPFAIL;
	if (rc < 0)
		snprintf(r->error, sizeof(r->error), "%s", c->err);
	else if (w.loop)
		snprintf(r->error, sizeof(r->error), "alias loop: %s", w.loop_text);
	if (rc < 0 || (w.count == 0 && w.loop))
		return DIR_LOOKUP_LOOP;
	if (w.count == 0) {
		snprintf(r->error, sizeof(r->error), "%s leads to no mailbox", r->mailbox);
		return DIR_LOOKUP_UNKNOWN;
	}
	return kind == DIR_K_ALIAS ? DIR_LOOKUP_ALIAS : DIR_LOOKUP_CATCHALL;
}

static enum dir_lookup
dir_lookup(struct dir_conn *c, const char *a, int relay_domain, struct dir_rcpt_result *r)
{
	const char *at = strrchr(a, '@');
	char delim[DIR_DELIM_MAX + 1];
	enum dir_kind kind = DIR_K_FOREIGN;
	int n;

	dir_delim(c->dir, delim);
	if (at == NULL)
		return DIR_LOOKUP_NOT_OURS;
	if (at == a) {
		/* "@domain" names the catch-all, nobody's mailbox */
		if ((n = dir_is_local(c, at + 1)) < 0)
			return DIR_LOOKUP_TEMPFAIL;
		kind = n ? DIR_K_NONE : DIR_K_FOREIGN;
	} else if (dir_resolve_key(c, a, delim, &kind, r->mailbox) != 0) {
		return DIR_LOOKUP_TEMPFAIL;
	}
	switch (kind) {
	case DIR_K_USER:
		return DIR_LOOKUP_USER;
	case DIR_K_ALIAS:
	case DIR_K_CATCHALL:
		return dir_lookup_alias(c, a, delim, kind, r);
	case DIR_K_NONE:
		r->mailbox[0] = '\0';
		return DIR_LOOKUP_UNKNOWN;
	case DIR_K_FOREIGN:
		break;
	}
	r->mailbox[0] = '\0';
	if (!relay_domain)
		return DIR_LOOKUP_NOT_OURS;
	if ((n = dir_relay_listed(c, a, delim)) < 0)
		return DIR_LOOKUP_TEMPFAIL;
	return n ? DIR_LOOKUP_RELAY : DIR_LOOKUP_RELAY_UNKNOWN;
}

enum dir_lookup
directory_rcpt_lookup(struct directory *d, const char *address, int relay_domain,
		      struct dir_rcpt_result *r, const char **error_r)
{
	struct dir_conn *c = dir_conn(d);
	enum dir_lookup res;
	char *a;

	memset(r, 0, sizeof(*r));
	if (c == NULL) {
		snprintf(r->error, sizeof(r->error), "%s", directory_error(d));
		res = DIR_LOOKUP_TEMPFAIL;
	} else {
		a = dir_lowdup(address);
		res = dir_lookup(c, a, relay_domain, r);
		free(a);
		if (res == DIR_LOOKUP_TEMPFAIL)
			snprintf(r->error, sizeof(r->error), "%s", c->err);
	}
	if (error_r != NULL)
		*error_r = r->error;
	return res;
}

/* ---- postmaster ---- */

int
directory_postmaster_address(struct directory *d, const char *hostname, char *buf, size_t len,
			     const char **error_r)
{
	struct dir_conn *c = dir_conn(d);
	char *h, *p, **first;
	int r = 0;

	if (c == NULL) {
		if (error_r != NULL)
			*error_r = directory_error(d);
		return -1;
	}
	/* mx1.example.com, then example.com: the host's own domain. */
	h = dir_lowdup(hostname != NULL ? hostname : "");
	for (p = h; r == 0 && p != NULL && *p != '\0'; ) {
		if ((r = dir_is_local(c, p)) == 1)
			snprintf(buf, len, "postmaster@%s", p);
		if ((p = strchr(p, '.')) != NULL && strchr(++p, '.') == NULL)
			p = NULL;	/* never a top-level domain alone */
	}
	free(h);
	if (r == 0) {
		r = dir_strings(c, &first, "SELECT name FROM domains ORDER BY name LIMIT 1", 0);
		if (r > 0)
			snprintf(buf, len, "postmaster@%s", first[0]);
		dir_strings_free(first);
	}
	if (r < 0 && error_r != NULL)
		*error_r = c->err;
	return r < 0 ? -1 : r > 0;
}
