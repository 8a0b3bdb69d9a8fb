/*
 * imap_cmd_list: LIST (RFC 3501 with LIST-EXTENDED, RFC 5258: selection
 * options SUBSCRIBED, SPECIAL-USE, RECURSIVEMATCH, REMOTE; return options
 * CHILDREN, SUBSCRIBED, SPECIAL-USE; several patterns) and LSUB. Every
 * reply carries \HasChildren or \HasNoChildren (CHILDREN) and the folder's
 * special-use attributes (RFC 6154). Patterns are matched on the store's
 * UTF-8 names: '*' matches anything, '%' anything but the separator '/'.
 * Public (module-internal): imap_cmd_list, imap_cmd_lsub.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_int.h"
#include "imap/imap_text.h"
#include "imap/imap_utf7.h"
#include "store/store.h"
#include "util/conn.h"
#include "util/xalloc.h"

#define IMAP_LIST_MAX_WILDCARDS 10   /* the matcher backtracks: keep it bounded */
#define IMAP_LIST_MAX_PATTERNS 32

enum {
	SEL_SUBSCRIBED = 1, SEL_SPECIAL = 2, SEL_RECURSIVE = 4,
	RET_SUBSCRIBED = 8, RET_CHILDREN = 16, RET_SPECIAL = 32,
	LIST_LSUB = 64,
};

struct imap_list_entry {
	char *name;
	unsigned special_use;
	int subscribed, has_children, noselect, nonexistent;
};

struct imap_list {
	struct imap_list_entry *v;
	size_t n;
};

static int
imap_list_collect(const struct store_folder_entry *e, void *arg)
{
	struct imap_list *l = arg;
	struct imap_list_entry *x;

	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	x = &l->v[l->n++];
	x->name = xstrdup(e->name);
	x->special_use = e->special_use;
	x->subscribed = e->subscribed;
	x->has_children = e->has_children;
	x->noselect = e->noselect;
	x->nonexistent = 0;
	return 0;
}

/* A subscription to a name that is no folder (RFC 3501 §6.3.6 allows it):
 * listed as \NonExistent (LIST) or \Noselect (LSUB). */
static int
imap_list_subscription(const char *name, void *arg)
{
	struct imap_list *l = arg;
	struct imap_list_entry *x;

	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].name, name) == 0)
			return 0;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	x = &l->v[l->n++];
	memset(x, 0, sizeof(*x));
	x->name = xstrdup(name);
	x->subscribed = x->noselect = x->nonexistent = 1;
	return 0;
}

static int
imap_list_cmp(const void *a, const void *b)
{
	const struct imap_list_entry *x = a, *y = b;
	int xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;

	if (xi != yi)
		return yi - xi;
	return strcmp(x->name, y->name);
}

/* reference + pattern, from mUTF-7, with INBOX in one spelling; NULL when
 * the pattern cannot name anything. */
static char *
imap_list_pattern(const char *ref, const char *pat)
{
	char *wire = xmalloc(strlen(ref) + strlen(pat) + 1), *utf8 = NULL;
	unsigned wild = 0;

	strcpy(wire, ref);
	strcat(wire, pat);
	if (imap_utf7_to_utf8(wire, &utf8) != 0) {
		free(wire);
		return NULL;
	}
	free(wire);
	for (const char *c = utf8; *c; c++)
		wild += *c == '*' || *c == '%';
	if (wild > IMAP_LIST_MAX_WILDCARDS) {
		free(utf8);
		return NULL;
	}
	if (strncasecmp(utf8, "INBOX", 5) == 0 && (utf8[5] == '\0' || utf8[5] == '/'))
		memcpy(utf8, "INBOX", 5);
	return utf8;
}

/* Has e a subscribed descendant? (entries are in name order) */
static int
imap_list_sub_child(const struct imap_list *l, size_t i)
{
	size_t len = strlen(l->v[i].name);

	for (size_t k = i + 1; k < l->n; k++) {
		if (strncmp(l->v[k].name, l->v[i].name, len) != 0 || l->v[k].name[len] != '/')
			continue;
		if (l->v[k].subscribed)
			return 1;
	}
	return 0;
}

static void
imap_list_reply(struct imap_session *s, const struct imap_list_entry *e, unsigned opt,
		int childinfo)
{
	char su[128];

	imap_special_use_names(e->special_use, su, sizeof(su));
	imap_printf(s, "* %s (%s%s%s%s)%s \"/\" ", opt & LIST_LSUB ? "LSUB" : "LIST",
		    e->nonexistent && !(opt & LIST_LSUB) ? "\\NonExistent " :
		    e->noselect ? "\\Noselect " : "",
		    e->has_children ? "\\HasChildren" : "\\HasNoChildren",
		    (opt & RET_SUBSCRIBED) && e->subscribed ? " \\Subscribed" : "", su, "");
	imap_write_mailbox(s, e->name);
	if (childinfo)
		imap_printf(s, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	imap_printf(s, "\r\n");
}

static void
imap_list_run(struct imap_session *s, const char *ref, const char *const *pats, size_t npats,
	      unsigned opt)
{
	struct imap_list l = { NULL, 0 };
	char *p[IMAP_LIST_MAX_PATTERNS];
	size_t np = 0;

	for (size_t i = 0; i < npats; i++)
		if ((p[np] = imap_list_pattern(ref, pats[i])) != NULL)
			np++;
	if (np > 0 && store_folder_list(s->acct, imap_list_collect, &l) < 0) {
		for (size_t i = 0; i < np; i++)
			free(p[i]);
		imap_done(s, "NO", "[SERVERBUG] Cannot list the folders");
		return;
	}
	if (np > 0 && (opt & SEL_SUBSCRIBED)) {
		store_folder_subscriptions(s->acct, imap_list_subscription, &l);
		if (l.n > 1)
			qsort(l.v, l.n, sizeof(*l.v), imap_list_cmp);
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct imap_list_entry *e = &l.v[i];
		int match = 0, childinfo = 0;

		for (size_t k = 0; k < np && !match; k++)
			match = imap_text_match(p[k], e->name);
		if (!match)
			continue;
		if ((opt & SEL_SPECIAL) && e->special_use == 0)
			continue;
		if ((opt & SEL_SUBSCRIBED) && !e->subscribed) {
			if (!(opt & SEL_RECURSIVE) || !imap_list_sub_child(&l, i))
				continue;
			childinfo = 1;
		}
		imap_list_reply(s, e, opt, childinfo);
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i].name);
	free(l.v);
	for (size_t i = 0; i < np; i++)
		free(p[i]);
	imap_done(s, "OK", "%s completed", opt & LIST_LSUB ? "LSUB" : "LIST");
}

/* Options "(A B)" into bits; -1 for one we do not know. */
static int
imap_list_opts(const struct imap_arg *a, int ret, unsigned *opt)
{
	const struct imap_arg *l;
	size_t n;
	const char *o;

	if (!imap_arg_list(a, &l, &n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!imap_arg_atom(&l[i], &o))
			return -1;
		if (strcasecmp(o, "SUBSCRIBED") == 0)
			*opt |= ret ? RET_SUBSCRIBED : SEL_SUBSCRIBED | RET_SUBSCRIBED;
		else if (strcasecmp(o, "SPECIAL-USE") == 0)
			*opt |= ret ? RET_SPECIAL : SEL_SPECIAL;
		else if (!ret && strcasecmp(o, "RECURSIVEMATCH") == 0)
			*opt |= SEL_RECURSIVE;
		else if (!ret && strcasecmp(o, "REMOTE") == 0)
			;
		else if (ret && strcasecmp(o, "CHILDREN") == 0)
			*opt |= RET_CHILDREN;
		else
			return -1;
	}
	return 0;
}

void
imap_cmd_list(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *ref, *pats[IMAP_LIST_MAX_PATTERNS], *kw;
	const struct imap_arg *pl;
	unsigned opt = 0;
	size_t i = 0, np = 0, npl;

	if (n > 0 && args[0].type == IMAP_ARG_LIST) {
		if (imap_list_opts(&args[0], 0, &opt) != 0)
			goto bad;
		i++;
	}
	/* RECURSIVEMATCH alone is an error (RFC 5258 §3) */
	if ((opt & SEL_RECURSIVE) && !(opt & (SEL_SUBSCRIBED | SEL_SPECIAL)))
		goto bad;
	if (i + 2 > n || !imap_arg_astring(&args[i], &ref))
		goto bad;
	i++;
	if (args[i].type == IMAP_ARG_LIST) {
		if (!imap_arg_list(&args[i], &pl, &npl) || npl == 0 || npl > IMAP_LIST_MAX_PATTERNS)
			goto bad;
		for (size_t k = 0; k < npl; k++)
			if (!imap_arg_astring(&pl[k], &pats[np++]))
				goto bad;
	} else if (!imap_arg_astring(&args[i], &pats[np++])) {
		goto bad;
	}
	i++;
	if (i < n) {
		if (i + 2 != n || !imap_arg_atom(&args[i], &kw) || strcasecmp(kw, "RETURN") != 0 ||
		    imap_list_opts(&args[i + 1], 1, &opt) != 0)
			goto bad;
	}
	if (np == 1 && pats[0][0] == '\0' && !(opt & (SEL_SUBSCRIBED | SEL_SPECIAL))) {
		/* the hierarchy delimiter and the root (RFC 3501 §6.3.8) */
		imap_printf(s, "* LIST (\\Noselect) \"/\" \"\"\r\n");
		imap_done(s, "OK", "LIST completed");
		return;
	}
	imap_list_run(s, ref, pats, np, opt);
	return;
bad:
	imap_done(s, "BAD", "Syntax: LIST [(options)] reference pattern [RETURN (options)]");
}

void
imap_cmd_lsub(struct imap_session *s, const struct imap_arg *args, size_t n)
{
	const char *ref, *pat;

	if (n != 2 || !imap_arg_astring(&args[0], &ref) || !imap_arg_astring(&args[1], &pat)) {
		imap_done(s, "BAD", "Syntax: LSUB reference pattern");
		return;
	}
	imap_list_run(s, ref, &pat, 1, SEL_SUBSCRIBED | LIST_LSUB);
}
