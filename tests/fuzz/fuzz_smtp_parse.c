/*
 * fuzz_smtp_parse: libFuzzer harness for smtp_parse_line,
 * smtp_parse_mailrcpt, smtp_param_get and smtp_args_have_smtputf8
 * (src/smtp/smtp_parse.h). The first byte picks allow_null; the rest,
 * NUL-terminated, is a command line, which is parsed as a line and, if it
 * is MAIL or RCPT, its argument as the path and parameters (and the whole
 * input as an argument too). Results must respect the header's limits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_smtp_parse: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static void
check_mailrcpt(const char *arg, const char *prefix, int allow_null)
{
	struct smtp_mailrcpt mr;
	enum addr_err ae;
	int utf8 = smtp_args_have_smtputf8(arg);
	enum smtp_mr_err rc = smtp_parse_mailrcpt(arg, prefix, allow_null, utf8, &mr, &ae);

	CHECK(utf8 == 0 || utf8 == 1);
	CHECK(mr.nparams >= 0 && mr.nparams <= SMTP_PARAMS_MAX);
	if (rc == SMTP_MR_EADDR)
		CHECK(ae != ADDR_OK);
	if (rc != SMTP_MR_OK)
		return;
	CHECK(ae == ADDR_OK);
	CHECK(strlen(mr.addr) < ADDR_MAX);
	CHECK(mr.addr[0] != '\0' || allow_null);
	if (!utf8)
		CHECK(addr_is_ascii(mr.addr));
	for (const char *p = mr.addr; *p; p++)
		CHECK(*p != '\r' && *p != '\n');
	for (int i = 0; i < mr.nparams; i++) {
		const struct smtp_param *pm = &mr.params[i];

		CHECK(pm->key[0] != '\0' && strlen(pm->key) < sizeof(pm->key));
		CHECK(strlen(pm->value) < sizeof(pm->value));
		for (const char *p = pm->key; *p; p++)
			CHECK((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-');
		for (const char *p = pm->value; *p; p++)
			CHECK((unsigned char)*p >= 33 && (unsigned char)*p <= 126 && *p != '=');
		CHECK(smtp_param_get(&mr, pm->key) != NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmdline cmd;
	int allow_null;
	char *line;

	if (size < 1)
		return 0;
	allow_null = data[0] & 1;
	line = malloc(size);
	memcpy(line, data + 1, size - 1);
	line[size - 1] = '\0';
	if (smtp_parse_line(line, &cmd) == 0) {
		size_t vl = strlen(cmd.verb);

		CHECK(vl > 0 && vl < sizeof(cmd.verb));
		for (size_t i = 0; i < vl; i++)
			CHECK(cmd.verb[i] >= 'A' && cmd.verb[i] <= 'Z');
		CHECK(cmd.arg >= line && cmd.arg <= line + strlen(line));
		if (strcmp(cmd.verb, "MAIL") == 0)
			check_mailrcpt(cmd.arg, "FROM:", allow_null);
		else if (strcmp(cmd.verb, "RCPT") == 0)
			check_mailrcpt(cmd.arg, "TO:", 0);
	}
	check_mailrcpt(line, "FROM:", allow_null);
	check_mailrcpt(line, "TO:", allow_null);
	free(line);
	return 0;
}
