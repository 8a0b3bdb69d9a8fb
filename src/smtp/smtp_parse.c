/*
 * smtp_parse: SMTP command line and MAIL/RCPT argument parsing
 * (see smtp_parse.h).
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_parse.h"

#define SMTP_POSTMASTER "<postmaster>"

int
smtp_parse_line(const char *line, struct smtp_cmdline *cmd)
{
	size_t i = 0;

	while (isalpha((unsigned char)line[i]) && i < sizeof(cmd->verb) - 1) {
		cmd->verb[i] = (char)toupper((unsigned char)line[i]);
		i++;
	}
	cmd->verb[i] = '\0';
	if (i == 0 || (line[i] != '\0' && line[i] != ' '))
		return -1;
	cmd->arg = line[i] == ' ' ? line + i + 1 : line + i;
	return 0;
}

static int
smtp_parse_param(const char *p, size_t n, struct smtp_param *pm)
{
	const char *eq = memchr(p, '=', n);
	size_t kl = eq ? (size_t)(eq - p) : n;
	size_t vl = eq ? n - kl - 1 : 0;

	if (kl == 0 || kl >= sizeof(pm->key) || vl >= sizeof(pm->value))
		return -1;
	for (size_t i = 0; i < kl; i++)
		if (!isalnum((unsigned char)p[i]) && !(i > 0 && p[i] == '-'))
			return -1;
	for (size_t i = 0; i < vl; i++) {
		unsigned char c = eq[1 + i];
		if (c < 33 || c > 126 || c == '=')
			return -1;
	}
	if (eq && vl == 0)
		return -1;
	for (size_t i = 0; i < kl; i++)
		pm->key[i] = (char)toupper((unsigned char)p[i]);
	pm->key[kl] = '\0';
	memcpy(pm->value, eq ? eq + 1 : "", vl);
	pm->value[vl] = '\0';
	return 0;
}

int
smtp_args_have_smtputf8(const char *arg)
{
	const char *gt = strrchr(arg, '>');
	const char *p = gt ? gt + 1 : arg;

	for (; (p = strcasestr(p, "SMTPUTF8")) != NULL; p += 8)
		if (p > arg && p[-1] == ' ' && (p[8] == '\0' || p[8] == ' '))
			return 1;
	return 0;
}

enum smtp_mr_err
smtp_parse_mailrcpt(const char *arg, const char *prefix, int allow_null, int utf8,
		    struct smtp_mailrcpt *mr, enum addr_err *addr_err_r)
{
	size_t pl = strlen(prefix), used;
	const char *p;

	memset(mr, 0, sizeof(*mr));
	*addr_err_r = ADDR_OK;
	if (strncasecmp(arg, prefix, pl) != 0)
		return SMTP_MR_EPREFIX;
	p = arg + pl;
	if (*p == ' ')
		p++;
	if (strcasecmp(prefix, "TO:") == 0 && strncasecmp(p, SMTP_POSTMASTER, sizeof(SMTP_POSTMASTER) - 1) == 0) {
		/* The one path without a domain (RFC 5321 4.1.1.3). */
		strcpy(mr->addr, "postmaster");
		mr->postmaster = 1;
		p += sizeof(SMTP_POSTMASTER) - 1;
	} else {
		*addr_err_r = addr_parse_path(p, strlen(p), allow_null, utf8, mr->addr, &used);
		if (*addr_err_r != ADDR_OK)
			return SMTP_MR_EADDR;
		p += used;
	}
	while (*p != '\0') {
		const char *start;

		if (*p != ' ')
			return SMTP_MR_EPARAM;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && *p != ' ')
			p++;
		if (mr->nparams == SMTP_PARAMS_MAX ||
		    smtp_parse_param(start, p - start, &mr->params[mr->nparams]) < 0)
			return SMTP_MR_EPARAM;
		mr->nparams++;
	}
	return SMTP_MR_OK;
}

const char *
smtp_param_get(const struct smtp_mailrcpt *mr, const char *key)
{
	for (int i = 0; i < mr->nparams; i++)
		if (strcasecmp(mr->params[i].key, key) == 0)
			return mr->params[i].value;
	return NULL;
}
