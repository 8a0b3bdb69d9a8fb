/*
 * test_smtp_parse: unit tests for smtp_parse_line, smtp_parse_mailrcpt,
 * smtp_param_get and smtp_args_have_smtputf8 (src/smtp/smtp_parse.h).
 * Each line is parsed from a copy that ends at a guard page, and so is
 * every prefix of it, one byte longer each time (STYLE.md rule 9): the
 * prefixes must not crash or read past the NUL, and the whole line must
 * give the same result as the line parsed in place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "smtp/smtp_parse.h"

#include "guard.h"

/* smtp_parse_line on line, its prefixes, and a guarded copy. */
static int
parse_line(const char *line, struct smtp_cmdline *cmd)
{
	size_t len = strlen(line);
	struct smtp_cmdline c2;
	struct guard g;
	int rc, rc2;

	memset(cmd, 0, sizeof(*cmd));
	rc = smtp_parse_line(line, cmd);
	if (rc == 0) {
		assert_true(strlen(cmd->verb) > 0 && strlen(cmd->verb) < sizeof(cmd->verb));
		assert_true(cmd->arg >= line && cmd->arg <= line + len);
	}
	for (size_t k = 0; k <= len; k++) {
		guard_init_nul(&g, line, k);
		rc2 = smtp_parse_line(g.p, &c2);
		if (k == len) {
			assert_int_equal(rc2, rc);
			if (rc == 0) {
				assert_string_equal(c2.verb, cmd->verb);
				assert_string_equal(c2.arg, cmd->arg);
			}
		} else if (rc2 == 0) {
			/* a prefix's verb is a prefix of the whole line's verb */
			assert_true(c2.arg >= g.p && c2.arg <= g.p + k);
		}
		guard_free(&g);
	}
	return rc;
}

static enum smtp_mr_err
parse_mr(const char *arg, const char *prefix, int allow_null, int utf8,
	 struct smtp_mailrcpt *mr, enum addr_err *ae)
{
	size_t len = strlen(arg);
	static struct smtp_mailrcpt m2;
	enum addr_err ae2;
	enum smtp_mr_err rc, rc2;
	struct guard g;

	rc = smtp_parse_mailrcpt(arg, prefix, allow_null, utf8, mr, ae);
	assert_true(mr->nparams >= 0 && mr->nparams <= SMTP_PARAMS_MAX);
	if (rc == SMTP_MR_OK) {
		assert_int_equal(*ae, ADDR_OK);
		assert_true(strlen(mr->addr) < ADDR_MAX);
	}
	if (rc == SMTP_MR_EADDR)
		assert_int_not_equal(*ae, ADDR_OK);
	for (size_t k = 0; k <= len; k++) {
		guard_init_nul(&g, arg, k);
		rc2 = smtp_parse_mailrcpt(g.p, prefix, allow_null, utf8, &m2, &ae2);
		if (k == len) {
			assert_int_equal(rc2, rc);
			assert_int_equal(ae2, *ae);
			assert_string_equal(m2.addr, mr->addr);
			assert_int_equal(m2.postmaster, mr->postmaster);
			assert_int_equal(m2.nparams, mr->nparams);
			for (int i = 0; i < mr->nparams; i++) {
				assert_string_equal(m2.params[i].key, mr->params[i].key);
				assert_string_equal(m2.params[i].value, mr->params[i].value);
			}
		} else if (rc == SMTP_MR_OK && rc2 == SMTP_MR_OK) {
			/* a prefix that parses already holds the whole path */
			assert_string_equal(m2.addr, mr->addr);
			assert_true(m2.nparams <= mr->nparams);
		}
		guard_free(&g);
	}
	return rc;
}

static int
have_utf8(const char *arg)
{
	size_t len = strlen(arg);
	struct guard g;
	int r = smtp_args_have_smtputf8(arg);

	for (size_t k = 0; k <= len; k++) {
		guard_init_nul(&g, arg, k);
		if (k == len)
			assert_int_equal(smtp_args_have_smtputf8(g.p), r);
		else
			(void)smtp_args_have_smtputf8(g.p);
		guard_free(&g);
	}
	return r;
}

static void
test_line_basic(void **state)
{
	struct smtp_cmdline c;

	(void)state;
	assert_int_equal(parse_line("MAIL FROM:<a@b>", &c), 0);
	assert_string_equal(c.verb, "MAIL");
	assert_string_equal(c.arg, "FROM:<a@b>");
	assert_int_equal(parse_line("QUIT", &c), 0);
	assert_string_equal(c.verb, "QUIT");
	assert_string_equal(c.arg, "");
	assert_int_equal(parse_line("ehlo client.example", &c), 0);
	assert_string_equal(c.verb, "EHLO");
	assert_string_equal(c.arg, "client.example");
	assert_int_equal(parse_line("StartTls", &c), 0);
	assert_string_equal(c.verb, "STARTTLS");
	/* only one space is eaten: the rest belongs to the argument */
	assert_int_equal(parse_line("HELO  x", &c), 0);
	assert_string_equal(c.arg, " x");
	assert_int_equal(parse_line("NOOP ", &c), 0);
	assert_string_equal(c.verb, "NOOP");
	assert_string_equal(c.arg, "");
}

static void
test_line_bad(void **state)
{
	static const char *const bad[] = {
		"", " ", " MAIL FROM:<a@b>", "MAIL:FROM", "MA1L FROM", "\x01QUIT", "QUIT\x01",
		"HELO\tx", "HELO\rx", "HELO\nx", "\xc3\xa9HLO x", "12", "-", "QUIT\x7f",
		"ABCDEFGHIJKLMNOPQ", "ABCDEFGHIJKLMNOP x",
	};
	struct smtp_cmdline c;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_line(bad[i], &c) != -1)
			fail_msg("line \"%s\" should be refused", bad[i]);
}

static void
test_line_verb_length(void **state)
{
	struct smtp_cmdline c;

	(void)state;
	/* 15 letters fit verb[16]; more is not a verb of ours */
	assert_int_equal(parse_line("ABCDEFGHIJKLMNO arg", &c), 0);
	assert_string_equal(c.verb, "ABCDEFGHIJKLMNO");
	assert_string_equal(c.arg, "arg");
	assert_int_equal(parse_line("abcdefghijklmnop", &c), -1);
}

static void
test_mail_basic(void **state)
{
	struct smtp_mailrcpt mr;
	enum addr_err ae;

	(void)state;
	assert_int_equal(parse_mr("FROM:<a@Example.com>", "FROM:", 1, 0, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.addr, "a@example.com");
	assert_int_equal(mr.nparams, 0);
	assert_int_equal(parse_mr("from:<a@b.c>", "FROM:", 1, 0, &mr, &ae), SMTP_MR_OK);
	assert_int_equal(parse_mr("FROM: <a@b.c>", "FROM:", 1, 0, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.addr, "a@b.c");
	assert_int_equal(parse_mr("TO:<Postmaster@b.c>", "TO:", 0, 0, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.addr, "Postmaster@b.c");
	assert_int_equal(parse_mr("FROM:<>", "FROM:", 1, 0, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.addr, "");
	assert_int_equal(parse_mr("FROM:<@r.example:a@b.c>", "FROM:", 1, 0, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.addr, "a@b.c");
}

static void
test_mail_prefix(void **state)
{
	struct smtp_mailrcpt mr;
	enum addr_err ae;

	(void)state;
	assert_int_equal(parse_mr("TO:<a@b.c>", "FROM:", 1, 0, &mr, &ae), SMTP_MR_EPREFIX);
	assert_int_equal(parse_mr("FROM <a@b.c>", "FROM:", 1, 0, &mr, &ae), SMTP_MR_EPREFIX);
	assert_int_equal(parse_mr("FROM", "FROM:", 1, 0, &mr, &ae), SMTP_MR_EPREFIX);
	assert_int_equal(parse_mr("", "TO:", 0, 0, &mr, &ae), SMTP_MR_EPREFIX);
	assert_int_equal(parse_mr("FROM:<a@b.c>", "TO:", 0, 0, &mr, &ae), SMTP_MR_EPREFIX);
}

static void
test_mail_addr_errors(void **state)
{
	struct smtp_mailrcpt mr;
	enum addr_err ae;

	(void)state;
	assert_int_equal(parse_mr("TO:<>", "TO:", 0, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(ae, ADDR_ENULL);
	assert_int_equal(parse_mr("TO:a@b.c", "TO:", 0, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(ae, ADDR_ESYNTAX);
	assert_int_equal(parse_mr("FROM:  <a@b.c>", "FROM:", 1, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(parse_mr("TO:<a@-b.c>", "TO:", 0, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(ae, ADDR_EDOMAIN);
	assert_int_equal(parse_mr("TO:<j\xc3\xb6@b.c>", "TO:", 0, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(ae, ADDR_EUTF8);
	assert_int_equal(parse_mr("TO:<j\xc3\xb6@b.c>", "TO:", 0, 1, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.addr, "j\xc3\xb6@b.c");
}

/* RFC 5321 4.1.1.3: "RCPT TO:<Postmaster>" without a domain, any case, is
 * a recipient every server must take (4.5.1); nowhere else. */
static void
test_rcpt_postmaster(void **state)
{
	struct smtp_mailrcpt mr;
	enum addr_err ae;

	(void)state;
	assert_int_equal(parse_mr("TO:<Postmaster>", "TO:", 0, 0, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.addr, "postmaster");
	assert_int_equal(mr.postmaster, 1);
	assert_int_equal(parse_mr("to: <POSTMASTER>", "TO:", 0, 1, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.addr, "postmaster");
	assert_int_equal(mr.postmaster, 1);
	assert_int_equal(parse_mr("TO:<postmaster> NOTIFY=NEVER", "TO:", 0, 0, &mr, &ae), SMTP_MR_OK);
	assert_int_equal(mr.postmaster, 1);
	assert_int_equal(mr.nparams, 1);
	/* with a domain it is an ordinary address */
	assert_int_equal(parse_mr("TO:<postmaster@Example.com>", "TO:", 0, 0, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.addr, "postmaster@example.com");
	assert_int_equal(mr.postmaster, 0);
	/* only that word, only in RCPT */
	assert_int_equal(parse_mr("TO:<postmaster>x", "TO:", 0, 0, &mr, &ae), SMTP_MR_EPARAM);
	assert_int_equal(parse_mr("TO:<postmaste>", "TO:", 0, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(parse_mr("TO:<postmasters>", "TO:", 0, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(parse_mr("TO:<\"postmaster\">", "TO:", 0, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(parse_mr("TO:<@r.example:postmaster>", "TO:", 0, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(parse_mr("TO:postmaster", "TO:", 0, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(parse_mr("FROM:<postmaster>", "FROM:", 1, 0, &mr, &ae), SMTP_MR_EADDR);
	assert_int_equal(ae, ADDR_ESYNTAX);
	assert_int_equal(mr.postmaster, 0);
}

static void
test_mail_params(void **state)
{
	struct smtp_mailrcpt mr;
	enum addr_err ae;

	(void)state;
	assert_int_equal(parse_mr("FROM:<a@b.c> SIZE=12345 body=8BITMIME SMTPUTF8", "FROM:", 1, 1,
				  &mr, &ae), SMTP_MR_OK);
	assert_int_equal(mr.nparams, 3);
	assert_string_equal(mr.params[0].key, "SIZE");
	assert_string_equal(mr.params[0].value, "12345");
	assert_string_equal(mr.params[1].key, "BODY");
	assert_string_equal(mr.params[1].value, "8BITMIME");
	assert_string_equal(mr.params[2].key, "SMTPUTF8");
	assert_string_equal(mr.params[2].value, "");
	assert_string_equal(smtp_param_get(&mr, "size"), "12345");
	assert_string_equal(smtp_param_get(&mr, "Body"), "8BITMIME");
	assert_string_equal(smtp_param_get(&mr, "SMTPUTF8"), "");
	assert_null(smtp_param_get(&mr, "RET"));
	assert_null(smtp_param_get(&mr, "SIZ"));
	/* extra and trailing spaces between parameters are tolerated */
	assert_int_equal(parse_mr("TO:<a@b.c>  NOTIFY=NEVER   ORCPT=rfc822;a@b.c  ", "TO:", 0, 0,
				  &mr, &ae), SMTP_MR_OK);
	assert_int_equal(mr.nparams, 2);
	assert_string_equal(smtp_param_get(&mr, "ORCPT"), "rfc822;a@b.c");
	assert_int_equal(parse_mr("FROM:<a@b.c> X-FOO-BAR=1", "FROM:", 1, 0, &mr, &ae),
			 SMTP_MR_OK);
	assert_string_equal(smtp_param_get(&mr, "x-foo-bar"), "1");
}

static void
test_mail_params_bad(void **state)
{
	static const char *const bad[] = {
		"FROM:<a@b.c>SIZE=1", "FROM:<a@b.c> SIZE=", "FROM:<a@b.c> =1", "FROM:<a@b.c> SIZE==1",
		"FROM:<a@b.c> SIZE=1=2", "FROM:<a@b.c> -SIZE=1", "FROM:<a@b.c> SI_ZE=1",
		"FROM:<a@b.c> SIZE=\x01", "FROM:<a@b.c> SIZE=\x7f", "FROM:<a@b.c> SIZE=\xc3\xa9",
		"FROM:<a@b.c> SIZE=1\tBODY=7BIT", "FROM:<a@b.c> SIZE=1\r\n", "FROM:<a@b.c>\r\n",
		"FROM:<a@b.c> S\xc3\xa9=1",
	};
	struct smtp_mailrcpt mr;
	enum addr_err ae;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_mr(bad[i], "FROM:", 1, 0, &mr, &ae) != SMTP_MR_EPARAM)
			fail_msg("\"%s\" should be a parameter error", bad[i]);
}

static void
test_mail_params_limits(void **state)
{
	char arg[1024], key[64], val[200];
	struct smtp_mailrcpt mr;
	enum addr_err ae;
	size_t n;

	(void)state;
	/* 16 parameters fit, 17 do not */
	n = (size_t)snprintf(arg, sizeof(arg), "FROM:<a@b.c>");
	for (int i = 0; i < SMTP_PARAMS_MAX; i++)
		n += (size_t)snprintf(arg + n, sizeof(arg) - n, " P%d=%d", i, i);
	assert_int_equal(parse_mr(arg, "FROM:", 1, 0, &mr, &ae), SMTP_MR_OK);
	assert_int_equal(mr.nparams, SMTP_PARAMS_MAX);
	assert_string_equal(smtp_param_get(&mr, "P15"), "15");
	snprintf(arg + n, sizeof(arg) - n, " EXTRA");
	assert_int_equal(parse_mr(arg, "FROM:", 1, 0, &mr, &ae), SMTP_MR_EPARAM);

	/* key of 31 octets fits key[32]; 32 does not */
	memset(key, 'K', 31);
	key[31] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<a@b.c> %s=v", key);
	assert_int_equal(parse_mr(arg, "FROM:", 1, 0, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.params[0].key, key);
	memset(key, 'K', 32);
	key[32] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<a@b.c> %s=v", key);
	assert_int_equal(parse_mr(arg, "FROM:", 1, 0, &mr, &ae), SMTP_MR_EPARAM);

	/* value of 127 octets fits value[128]; 128 does not */
	memset(val, 'v', 127);
	val[127] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<a@b.c> K=%s", val);
	assert_int_equal(parse_mr(arg, "FROM:", 1, 0, &mr, &ae), SMTP_MR_OK);
	assert_string_equal(mr.params[0].value, val);
	memset(val, 'v', 128);
	val[128] = '\0';
	snprintf(arg, sizeof(arg), "FROM:<a@b.c> K=%s", val);
	assert_int_equal(parse_mr(arg, "FROM:", 1, 0, &mr, &ae), SMTP_MR_EPARAM);
}

static void
test_mail_crlf_cannot_smuggle(void **state)
{
	struct smtp_mailrcpt mr;
	enum addr_err ae;

	(void)state;
	assert_int_not_equal(parse_mr("TO:<a@b.c\r\nRCPT TO:<x@y.z>>", "TO:", 0, 0, &mr, &ae),
			     SMTP_MR_OK);
	assert_int_not_equal(parse_mr("TO:<a\r\n@b.c>", "TO:", 0, 0, &mr, &ae), SMTP_MR_OK);
	assert_int_not_equal(parse_mr("TO:<a@b.c> X=\r\nDATA", "TO:", 0, 0, &mr, &ae),
			     SMTP_MR_OK);
}

static void
test_smtputf8(void **state)
{
	(void)state;
	assert_int_equal(have_utf8("FROM:<a@b.c> SMTPUTF8"), 1);
	assert_int_equal(have_utf8("FROM:<a@b.c> smtputf8"), 1);
	assert_int_equal(have_utf8("FROM:<a@b.c> BODY=8BITMIME SMTPUTF8 SIZE=10"), 1);
	assert_int_equal(have_utf8("FROM:<j\xc3\xb6@b.c> SMTPUTF8"), 1);
	assert_int_equal(have_utf8("FROM:<a@b.c>"), 0);
	assert_int_equal(have_utf8("FROM:<a@b.c> XSMTPUTF8"), 0);
	assert_int_equal(have_utf8("FROM:<a@b.c> SMTPUTF8X"), 0);
	assert_int_equal(have_utf8("FROM:<a@b.c> X=SMTPUTF8"), 0);
	assert_int_equal(have_utf8("FROM:<SMTPUTF8@b.c>"), 0);
	assert_int_equal(have_utf8("FROM:<\" SMTPUTF8 \"@b.c>"), 0);
	assert_int_equal(have_utf8("FROM:<\"x\"@b.c> SMTPUTF8"), 1);
	assert_int_equal(have_utf8("SMTPUTF8"), 0);
	assert_int_equal(have_utf8(""), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_basic),
		cmocka_unit_test(test_line_bad),
		cmocka_unit_test(test_line_verb_length),
		cmocka_unit_test(test_mail_basic),
		cmocka_unit_test(test_mail_prefix),
		cmocka_unit_test(test_mail_addr_errors),
		cmocka_unit_test(test_rcpt_postmaster),
		cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_mail_params_bad),
		cmocka_unit_test(test_mail_params_limits),
		cmocka_unit_test(test_mail_crlf_cannot_smuggle),
		cmocka_unit_test(test_smtputf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
