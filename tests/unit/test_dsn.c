/*
 * test_dsn: the RFC 3464 report text, built from structured fields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mail/dsn.h"

static void
test_build(void **state)
{
	const char hdrs[] = "Subject: hi\r\nX-Mark: 1\r\n";
	struct dsn_rcpt r[4] = {
		{ "a@example.test", "5.1.1", "5.1.1 <a@example.test>: user unknown", NULL, 0, NULL },
		{ "b@example.test", "4.4.7", "4.4.0 line one\r\nInjected: header", NULL, 0, NULL },
		/* the diagnostic text is not read for the remote fields: only
		 * the structured ones say what the server said */
		{ "c@example.net", "5.1.1", "something else entirely", "mx.example.net", 550,
		  "5.1.1 No such user\r\nInjected: too" },
		{ "d@example.net", "4.4.7", "4.5.0 mx.example.net[192.0.2.7] said: 421 protocol error: short",
		  NULL, 0, NULL },
	};
	struct dsn_info in = {
		.reporting_mta = "mx1.example.test", .qid = "0123456789ABCDEF",
		.sender = "s@example.org", .arrival = 1700000000, .now = 1700000100,
		.rcpt = r, .nrcpt = 4, .headers = hdrs, .headers_len = strlen(hdrs),
	};
	size_t len;
	char *t = dsn_build(&in, &len);

	assert_int_equal(strlen(t), len);
	assert_non_null(strstr(t, "To: <s@example.org>\r\n"));
	assert_non_null(strstr(t, "Content-Type: multipart/report; report-type=delivery-status;"));
	assert_non_null(strstr(t, "Reporting-MTA: dns; mx1.example.test\r\n"));
	assert_non_null(strstr(t, "Final-Recipient: rfc822; a@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"));
	assert_non_null(strstr(t, "Status: 4.4.7\r\n"));
	assert_non_null(strstr(t, "Diagnostic-Code: X-Tandem; 5.1.1 <a@example.test>: user unknown\r\n"));
	/* a remote server's refusal: its name and its words (RFC 3464 2.3.5, 2.3.6) */
	assert_non_null(strstr(t, "Status: 5.1.1\r\nRemote-MTA: dns; mx.example.net\r\n"
				  "Diagnostic-Code: smtp; 550 5.1.1 No such user  Injected: too\r\n"));
	/* what we decided ourselves is not put in the server's mouth, even when
	 * the text looks like a reply */
	assert_non_null(strstr(t, "Diagnostic-Code: X-Tandem; 4.5.0 mx.example.net[192.0.2.7] said: 421"));
	assert_null(strstr(t, "\r\nInjected: too"));
	/* a diagnostic with CR/LF cannot add fields */
	assert_null(strstr(t, "\r\nInjected: header"));
	assert_non_null(strstr(t, "Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\nX-Mark: 1\r\n"));
	assert_non_null(strstr(t, "--0123456789ABCDEF.1700000100/mx1.example.test--\r\n"));
	/* every line ends in CRLF */
	for (size_t i = 0; i < len; i++)
		if (t[i] == '\n')
			assert_true(i > 0 && t[i - 1] == '\r');
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
