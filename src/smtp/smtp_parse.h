/*
 * smtp_parse: one SMTP command line into its verb and argument, and the
 * MAIL/RCPT argument into path and ESMTP parameters (RFC 5321 4.1.1,
 * RFC 1869). Pure functions. Public: smtp_parse_line, smtp_parse_mailrcpt.
 */
#ifndef TANDEM_SMTP_PARSE_H
#define TANDEM_SMTP_PARSE_H
#include <stddef.h>

#include "mail/addr.h"

#define SMTP_CMD_MAX 512            /* RFC 5321 4.5.3.1.4, including CRLF */
#define SMTP_PARAMS_MAX 16

struct smtp_cmdline {
	char verb[16];              /* upper-cased; "" when not a word */
	const char *arg;            /* after the verb and one space; "" if none */
};

struct smtp_param {
	char key[32];
	char value[128];            /* "" when the keyword has no value */
};

struct smtp_mailrcpt {
	/* The canonical address; "postmaster" (no domain) for RCPT's
	 * <Postmaster>, marked by postmaster = 1. */
	char addr[ADDR_MAX];
	int postmaster;
	struct smtp_param params[SMTP_PARAMS_MAX];
	int nparams;
};

/* line: NUL-terminated, without CRLF. Returns 0, or -1 when the line is
 * not "VERB[ SP arg]" (non-printable octets in the verb, empty line). */
int smtp_parse_line(const char *line, struct smtp_cmdline *cmd);

enum smtp_mr_err {
	SMTP_MR_OK = 0,
	SMTP_MR_EPREFIX,            /* missing "FROM:" / "TO:" */
	SMTP_MR_EADDR,              /* see *addr_err_r */
	SMTP_MR_EPARAM              /* malformed or too many parameters */
};

/* arg: what follows "MAIL " or "RCPT ". prefix: "FROM:" or "TO:".
 * A space after the colon is tolerated (common, and harmless). With "TO:",
 * "<Postmaster>" without a domain (any case, RFC 5321 4.1.1.3) is accepted:
 * addr "postmaster", mr->postmaster = 1; the server maps it to the
 * postmaster of one of its domains (RFC 5321 4.5.1). */
enum smtp_mr_err smtp_parse_mailrcpt(const char *arg, const char *prefix, int allow_null,
				     int utf8, struct smtp_mailrcpt *mr, enum addr_err *addr_err_r);
/* The value of parameter key (case-insensitive) or NULL. */
const char *smtp_param_get(const struct smtp_mailrcpt *mr, const char *key);
/* 1 when the parameter list mentions SMTPUTF8 (scanned before the path is
 * parsed, since it decides whether a UTF-8 address is acceptable). */
int smtp_args_have_smtputf8(const char *arg);

#endif
