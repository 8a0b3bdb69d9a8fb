/*
 * imap_cmd: the command table of the IMAP server, its dispatch (state
 * checks are flags on the rows; "UID x" finds the row of x), and the
 * helpers the handlers share for their arguments and replies.
 * Public (module-internal): imap_cmd_dispatch, imap_flags_arg,
 * imap_write_string, imap_write_nstring, imap_write_mailbox,
 * imap_mailbox_arg, imap_quota, imap_capabilities.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/sasl.h"
#include "conf/config.h"
#include "directory/directory.h"
#include "imap/imap_int.h"
#include "imap/imap_utf7.h"
#include "store/store.h"
#include "util/conn.h"
#include "util/log.h"
#include "util/xalloc.h"

#define A IMAP_F_ANY
#define L IMAP_F_LOGGED
#define S IMAP_F_SELECTED

static const struct imap_cmd imap_cmds[] = {
	{ "CAPABILITY", imap_cmd_capability, A },
	{ "NOOP", imap_cmd_noop, A },
	{ "LOGOUT", imap_cmd_logout, A },
	{ "ID", imap_cmd_id, A },
	{ "STARTTLS", imap_cmd_starttls, IMAP_F_NOAUTH },
	{ "LOGIN", imap_cmd_login, IMAP_F_NOAUTH },
	{ "AUTHENTICATE", imap_cmd_authenticate, IMAP_F_NOAUTH },
	{ "ENABLE", imap_cmd_enable, L },
	{ "NAMESPACE", imap_cmd_namespace, L },
	{ "SELECT", imap_cmd_select, L },
	{ "EXAMINE", imap_cmd_examine, L },
	{ "CREATE", imap_cmd_create, L },
	{ "DELETE", imap_cmd_delete, L },
	{ "RENAME", imap_cmd_rename, L },
	{ "SUBSCRIBE", imap_cmd_subscribe, L },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, L },
	{ "LIST", imap_cmd_list, L },
	{ "LSUB", imap_cmd_lsub, L },
	{ "STATUS", imap_cmd_status, L },
	{ "APPEND", imap_cmd_append, L },
	{ "GETQUOTA", imap_cmd_getquota, L },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, L },
	{ "SETQUOTA", imap_cmd_setquota, L },
	{ "IDLE", imap_cmd_idle, L },
	{ "CHECK", imap_cmd_check, S },
	{ "CLOSE", imap_cmd_close, S },
	{ "UNSELECT", imap_cmd_unselect, S },
	{ "EXPUNGE", imap_cmd_expunge, S | IMAP_F_UID },
	{ "SEARCH", imap_cmd_search, S | IMAP_F_UID | IMAP_F_NOEXPUNGE },
	{ "FETCH", imap_cmd_fetch, S | IMAP_F_UID | IMAP_F_NOEXPUNGE },
	{ "STORE", imap_cmd_store, S | IMAP_F_UID | IMAP_F_NOEXPUNGE },
	{ "COPY", imap_cmd_copy, S | IMAP_F_UID },
	{ "MOVE", imap_cmd_move, S | IMAP_F_UID },
};

static const struct imap_cmd *
imap_cmd_find(const char *name, int uid)
{
	for (size_t i = 0; i < sizeof(imap_cmds) / sizeof(imap_cmds[0]); i++)
		if (strcasecmp(imap_cmds[i].name, name) == 0)
			return !uid || (imap_cmds[i].flags & IMAP_F_UID) ? &imap_cmds[i] : NULL;
	return NULL;
}

static int
imap_cmd_allowed(const struct imap_session *s, const struct imap_cmd *c)
{
	switch (s->state) {
	case IMAP_NOAUTH:
		return c->flags & IMAP_F_NOAUTH;
	case IMAP_AUTH:
		return c->flags & IMAP_F_AUTH;
	case IMAP_SELECTED:
		return c->flags & (IMAP_F_AUTH | IMAP_F_SELECTED);
	case IMAP_LOGOUT:
		return 0;
	}
	return 0;
}

void
imap_cmd_dispatch(struct imap_session *s)
{
	const char *name = imap_parser_command(s->parser);
	const struct imap_arg *args;
	const struct imap_cmd *c;
	size_t n = 0;

	args = imap_parser_args(s->parser, &n);
	free(s->tag);
	s->tag = xstrdup(imap_parser_tag(s->parser));
	s->ncommands++;
	s->uid = 0;
	if (name != NULL && strcasecmp(name, "UID") == 0) {
		if (n < 1 || !imap_arg_atom(&args[0], &name)) {
			imap_done(s, "BAD", "UID needs a command");
			return;
		}
		s->uid = 1;
		args++;
		n--;
	}
	if (name == NULL || (c = imap_cmd_find(name, s->uid)) == NULL) {
		log_debug(s->id, "event=unknown_command service=imap client=[%s] command=%s",
			  s->client, log_q(name ? name : ""));
		imap_done(s, "BAD", "Unknown command");
		imap_session_bad(s);
		return;
	}
	if (!imap_cmd_allowed(s, c)) {
		imap_done(s, "BAD", "%s not allowed %s", c->name,
			  s->state == IMAP_NOAUTH ? "before login" :
			  s->state == IMAP_AUTH && (c->flags & IMAP_F_SELECTED) ? "without a selected mailbox" :
			  "now");
		imap_session_bad(s);
		return;
	}
	s->bad_in_row = 0;
	s->cmd = c;
	c->fn(s, args, n);
}

/* --- replies ------------------------------------------------------------- */

void
imap_write_string(struct imap_session *s, const char *str, size_t len)
{
	int quote = len < 1024;

	for (size_t i = 0; quote && i < len; i++)
		if ((unsigned char)str[i] < 0x20 || (unsigned char)str[i] > 0x7e)
			quote = 0;
	if (!quote) {
		conn_printf(s->c, "{%zu}\r\n", len);
		conn_write(s->c, str, len);
		return;
	}
	conn_write(s->c, "\"", 1);
	for (size_t i = 0; i < len; i++) {
		if (str[i] == '"' || str[i] == '\\')
			conn_write(s->c, "\\", 1);
		conn_write(s->c, &str[i], 1);
	}
	conn_write(s->c, "\"", 1);
}

void
imap_write_nstring(struct imap_session *s, const char *str)
{
	if (str == NULL)
		conn_write(s->c, "NIL", 3);
	else
		imap_write_string(s, str, strlen(str));
}

void
imap_write_mailbox(struct imap_session *s, const char *utf8)
{
	char *w = NULL;

	if (imap_utf8_to_utf7(utf8, &w) == 0) {
		imap_write_string(s, w, strlen(w));
		free(w);
	} else {
		imap_write_string(s, utf8, strlen(utf8));
	}
}

/* --- arguments ----------------------------------------------------------- */

char *
imap_mailbox_str(struct imap_session *s, const char *wire)
{
	const char *err;
	char *name = NULL;

	if (imap_utf7_to_utf8(wire, &name) != 0) {
		imap_done(s, "NO", "[CANNOT] Invalid mailbox name (not modified UTF-7)");
		return NULL;
	}
	if (store_folder_name_check(name, &err) != 0) {
		log_debug(s->id, "event=bad_mailbox service=imap user=%s name=%s", log_addr(s->user),
			  log_q(name));
		imap_done(s, "NO", "[CANNOT] %s", err ? err : "Invalid mailbox name");
		free(name);
		return NULL;
	}
	/* one spelling of INBOX inside the session */
	if (strncasecmp(name, "INBOX", 5) == 0 && (name[5] == '\0' || name[5] == '/'))
		memcpy(name, "INBOX", 5);
	return name;
}

char *
imap_mailbox_arg(struct imap_session *s, const struct imap_arg *a)
{
	const char *wire;

	if (!imap_arg_astring(a, &wire)) {
		imap_done(s, "BAD", "Invalid mailbox name");
		return NULL;
	}
	return imap_mailbox_str(s, wire);
}

static const char *const imap_sys_flags[] = { "\\Seen", "\\Answered", "\\Flagged", "\\Deleted",
					      "\\Draft" };

/* A flag list or a single flag; keywords are atoms. \Recent cannot be set
 * and is ignored, as RFC 3501 allows. */
int
imap_flags_arg(struct imap_session *s, const struct imap_arg *a, unsigned *flags_r,
	       char **keywords_r)
{
	const struct imap_arg *list = a;
	size_t n = 1, kwlen = 0;
	char *kw = NULL;

	*flags_r = 0;
	*keywords_r = NULL;
	if (a->type == IMAP_ARG_LIST && !imap_arg_list(a, &list, &n))
		goto bad;
	for (size_t i = 0; i < n; i++) {
		const char *f;
		int sys = 0;

		if (!imap_arg_atom(&list[i], &f))
			goto bad;
		for (size_t k = 0; k < 5; k++)
			if (strcasecmp(f, imap_sys_flags[k]) == 0) {
				*flags_r |= 1u << k;
				sys = 1;
			}
		if (sys || strcasecmp(f, "\\Recent") == 0)
			continue;
		if (f[0] == '\\' || strpbrk(f, "(){%*\"]") != NULL || strlen(f) > 128)
			goto bad;
		kw = xrealloc(kw, kwlen + strlen(f) + 2);
		if (kwlen > 0)
			kw[kwlen++] = ' ';
		strcpy(kw + kwlen, f);
		kwlen += strlen(f);
	}
	*keywords_r = kw;
	return 0;
bad:
	free(kw);
	imap_done(s, "BAD", "Invalid flags");
	return -1;
}

long long
imap_quota(struct imap_session *s)
{
	return directory_user_quota(s->srv->d.dir, s->user, (long long)imap_cf(s)->default_quota);
}

const char *
imap_capabilities(struct imap_session *s)
{
	static char buf[512];
	socklen_t len;
	int plain = auth_plaintext_ok(s->srv->d.auth, s->tls, conn_sockaddr(s->c, &len));

	snprintf(buf, sizeof(buf), "IMAP4rev1 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UIDPLUS "
		 "MOVE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE LIST-EXTENDED QUOTA "
		 "STATUS=SIZE%s%s",
		 s->state == IMAP_NOAUTH && !s->tls && imap_tls(s) != NULL ? " STARTTLS" : "",
		 s->state != IMAP_NOAUTH ? "" : plain ? " AUTH=PLAIN AUTH=LOGIN" : " LOGINDISABLED");
	return buf;
}
