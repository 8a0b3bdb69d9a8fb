/*
 * test_store_mime: unit tests for store_mime_summarize and
 * store_mime_section (src/store/store_mime.h). Golden ENVELOPE, BODY and
 * BODYSTRUCTURE strings for a set of messages (plain, alternative, mixed
 * with attachments and RFC 2231 parameters, message/rfc822, digest,
 * groups, quoted names, comments, missing headers, encoded-words, 8-bit
 * headers, broken multiparts, boundaries matched by prefix); these were
 * checked against what Dovecot 2.3 sends for the same messages, the known
 * differences being case (upper case here), quoted strings with '"' or
 * '\\' (escaped here, literals there), unfolding (CRLF removed here, the
 * line break and its blanks made one space there), TAB (kept here, a
 * space there) and empty list elements (skipped here). Every message is also fed
 * with CRLF line ends (same summary) and as every prefix from a guarded
 * buffer (no read past the end, balanced output). MIME bombs (100,000
 * parts, 10,000 levels of multipart and of message/rfc822, a 5 MiB header)
 * are summarised with truncated set and a peak RSS under 200 MiB; section
 * offsets; several threads at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "store/store_mime.h"

#include "guard.h"

struct golden {
	const char *name;
	const char *msg;
	size_t len;
	const char *envelope, *body, *bodystructure, *preview, *message_id;
	long long size;
	size_t header_len;
	long long date;
	int has_attachment;
};

static const struct golden goldens[] = {
	{ "plain",
	  "From: \"Joe, Q. \\\"Pub\\\"\" <joe@example.com>\n"
	  "To: Bob <bob@example.org>\n"
	  "Subject: =?UTF-8?Q?h=C3=A9llo?=\n"
	  "  world\n"
	  "Date: Tue, 1 Dec 2026 10:00:00 +0100\n"
	  "Message-ID: <abc@example.com>\n"
	  "\n"
	  "Hello there\n"
	  "line 2\n",
	  195,
	  /* envelope */ "(\"Tue, 1 Dec 2026 10:00:00 +0100\" \"=?UTF-8?Q?h=C3=A9llo?=  world\" ((\"Joe, Q. \\\"Pub\\\"\" NIL \"joe\" \"example.com\")) ((\"Joe, Q. \\\"Pub\\\"\" NIL \"joe\" \"example.com\")) ((\"Joe, Q. \\\"Pub\\\"\" NIL \"joe\" \"example.com\")) ((\"Bob\" NIL \"bob\" \"example.org\")) NIL NIL NIL \"<abc@example.com>\")",
	  /* body */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 21 2)",
	  /* bodystructure */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 21 2 NIL NIL NIL NIL)",
	  /* preview */ "Hello there line 2",
	  /* message_id */ "<abc@example.com>",
	  204, 183, 1796115600LL, 0 },
	{ "alt",
	  "From: Alice <alice@example.com>\n"
	  "To: bob@example.org\n"
	  "Subject: alt\n"
	  "Date: Mon, 30 Nov 2026 08:00:00 +0000\n"
	  "Message-ID: <alt1@example.com>\n"
	  "MIME-Version: 1.0\n"
	  "Content-Type: multipart/alternative; boundary=\"b1\"\n"
	  "\n"
	  "This is a preamble\n"
	  "--b1\n"
	  "Content-Type: text/plain; charset=utf-8\n"
	  "Content-Transfer-Encoding: quoted-printable\n"
	  "\n"
	  "Hi Bob, caf=C3=A9\n"
	  "second line\n"
	  "--b1\n"
	  "Content-Type: text/html; charset=utf-8\n"
	  "\n"
	  "<html><body><p>Hi Bob</p></body></html>\n"
	  "--b1--\n"
	  "epilogue\n",
	  444,
	  /* envelope */ "(\"Mon, 30 Nov 2026 08:00:00 +0000\" \"alt\" ((\"Alice\" NIL \"alice\" \"example.com\")) ((\"Alice\" NIL \"alice\" \"example.com\")) ((\"Alice\" NIL \"alice\" \"example.com\")) ((NIL NIL \"bob\" \"example.org\")) NIL NIL NIL \"<alt1@example.com>\")",
	  /* body */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 30 1)(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 39 0) \"ALTERNATIVE\")",
	  /* bodystructure */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"QUOTED-PRINTABLE\" 30 1 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"utf-8\") NIL NIL \"7BIT\" 39 0 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"b1\") NIL NIL NIL)",
	  /* preview */ "Hi Bob, caf\xc3\xa9 second line",
	  /* message_id */ "<alt1@example.com>",
	  465, 212, 1796025600LL, 0 },
	{ "mixed",
	  "From: Carol <carol@example.com>\n"
	  "To: Dave <dave@example.net>, \"Eve, the \\\"spy\\\"\" <eve@example.net>\n"
	  "Cc: (comment only) frank@example.com (Frank F.)\n"
	  "Subject: report\n"
	  "Date: 2 Dec 2026 12:00 -0500\n"
	  "MIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed;\n"
	  " boundary=\"==outer==\"\n"
	  "\n"
	  "--==outer==\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "See attached.\n"
	  "--==outer==\n"
	  "Content-Type: application/pdf; name=\"report.pdf\"\n"
	  "Content-Disposition: attachment; filename=\"report.pdf\"; size=12\n"
	  "Content-Transfer-Encoding: base64\n"
	  "Content-ID: <part2@example.com>\n"
	  "Content-Description: The report\n"
	  "Content-Language: en, de\n"
	  "Content-Location: http://example.com/r.pdf\n"
	  "\n"
	  "JVBERi0xLjQK\n"
	  "JVBERi0xLjQK\n"
	  "--==outer==\n"
	  "Content-Type: text/plain; name*0=\"long\"; name*1=\"name.txt\"\n"
	  "Content-Disposition: inline; filename*=utf-8'en'%E2%82%AC.txt\n"
	  "\n"
	  "x\n"
	  "--==outer==--\n",
	  783,
	  /* envelope */ "(\"2 Dec 2026 12:00 -0500\" \"report\" ((\"Carol\" NIL \"carol\" \"example.com\")) ((\"Carol\" NIL \"carol\" \"example.com\")) ((\"Carol\" NIL \"carol\" \"example.com\")) ((\"Dave\" NIL \"dave\" \"example.net\")(\"Eve, the \\\"spy\\\"\" NIL \"eve\" \"example.net\")) ((\"Frank F.\" NIL \"frank\" \"example.com\")) NIL NIL NIL)",
	  /* body */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 13 0)(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") \"<part2@example.com>\" \"The report\" \"BASE64\" 26)(\"TEXT\" \"PLAIN\" (\"NAME\" \"longname.txt\" \"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 1 0) \"MIXED\")",
	  /* bodystructure */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 13 0 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" \"report.pdf\") \"<part2@example.com>\" \"The report\" \"BASE64\" 26 NIL (\"ATTACHMENT\" (\"FILENAME\" \"report.pdf\" \"SIZE\" \"12\")) (\"en\" \"de\") \"http://example.com/r.pdf\")(\"TEXT\" \"PLAIN\" (\"NAME\" \"longname.txt\" \"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 1 0 NIL (\"INLINE\" (\"FILENAME*\" \"utf-8'en'%E2%82%AC.txt\")) NIL NIL) \"MIXED\" (\"BOUNDARY\" \"==outer==\") NIL NIL NIL)",
	  /* preview */ "See attached.",
	  /* message_id */ NULL,
	  813, 272, 1796230800LL, 1 },
	{ "rfc822",
	  "From: outer@example.com\n"
	  "Subject: fwd\n"
	  "MIME-Version: 1.0\n"
	  "Content-Type: multipart/mixed; boundary=XX\n"
	  "\n"
	  "--XX\n"
	  "\n"
	  "see below\n"
	  "--XX\n"
	  "Content-Type: message/rfc822\n"
	  "\n"
	  "From: Inner <inner@example.com>\n"
	  "To: someone@example.com\n"
	  "Subject: inner subject\n"
	  "Date: Sun, 29 Nov 2026 16:46:22 +0000\n"
	  "Message-ID: <inner@x>\n"
	  "In-Reply-To: <prev@x>\n"
	  "Content-Type: multipart/alternative; boundary=YY\n"
	  "\n"
	  "--YY\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "inner text\n"
	  "--YY\n"
	  "Content-Type: text/html\n"
	  "\n"
	  "<b>inner</b>\n"
	  "--YY--\n"
	  "\n"
	  "--XX--\n",
	  461,
	  /* envelope */ "(NIL \"fwd\" ((NIL NIL \"outer\" \"example.com\")) ((NIL NIL \"outer\" \"example.com\")) ((NIL NIL \"outer\" \"example.com\")) NIL NIL NIL NIL NIL)",
	  /* body */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 9 0)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 320 (\"Sun, 29 Nov 2026 16:46:22 +0000\" \"inner subject\" ((\"Inner\" NIL \"inner\" \"example.com\")) ((\"Inner\" NIL \"inner\" \"example.com\")) ((\"Inner\" NIL \"inner\" \"example.com\")) ((NIL NIL \"someone\" \"example.com\")) NIL NIL \"<prev@x>\" \"<inner@x>\") ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 0)(\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 0) \"ALTERNATIVE\") 17) \"MIXED\")",
	  /* bodystructure */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 9 0 NIL NIL NIL NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 320 (\"Sun, 29 Nov 2026 16:46:22 +0000\" \"inner subject\" ((\"Inner\" NIL \"inner\" \"example.com\")) ((\"Inner\" NIL \"inner\" \"example.com\")) ((\"Inner\" NIL \"inner\" \"example.com\")) ((NIL NIL \"someone\" \"example.com\")) NIL NIL \"<prev@x>\" \"<inner@x>\") ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 10 0 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 0 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"YY\") NIL NIL NIL) 17 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"XX\") NIL NIL NIL)",
	  /* preview */ "see below",
	  /* message_id */ NULL,
	  491, 104, 0LL, 0 },
	{ "missing",
	  "Subject: nothing else\n"
	  "\n"
	  "body\n",
	  28,
	  /* envelope */ "(NIL \"nothing else\" NIL NIL NIL NIL NIL NIL NIL NIL)",
	  /* body */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 6 1)",
	  /* bodystructure */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 6 1 NIL NIL NIL NIL)",
	  /* preview */ "body",
	  /* message_id */ NULL,
	  31, 25, 0LL, 0 },
	{ "noheader",
	  "\n"
	  "\n"
	  "body only",
	  11,
	  /* envelope */ "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
	  /* body */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 11 1)",
	  /* bodystructure */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 11 1 NIL NIL NIL NIL)",
	  /* preview */ "body only",
	  /* message_id */ NULL,
	  13, 2, 0LL, 0 },
	{ "eightbit",
	  "From: J\xc3\xb6rg <joerg@example.de>\n"
	  "Subject: Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln\n"
	  "To: =?ISO-8859-1?Q?J=F6rg?= <j@x.de>\n"
	  "Content-Type: text/plain; charset=iso-8859-1\n"
	  "Content-Transfer-Encoding: 8bit\n"
	  "\n"
	  "Gr\xfc\xdf" "e\n",
	  179,
	  /* envelope */ "(NIL {17}\r\n"
	  "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln (({5}\r\n"
	  "J\xc3\xb6rg NIL \"joerg\" \"example.de\")) (({5}\r\n"
	  "J\xc3\xb6rg NIL \"joerg\" \"example.de\")) (({5}\r\n"
	  "J\xc3\xb6rg NIL \"joerg\" \"example.de\")) ((\"=?ISO-8859-1?Q?J=F6rg?=\" NIL \"j\" \"x.de\")) NIL NIL NIL NIL)",
	  /* body */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\") NIL NIL \"8BIT\" 7 1)",
	  /* bodystructure */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"iso-8859-1\") NIL NIL \"8BIT\" 7 1 NIL NIL NIL NIL)",
	  /* preview */ "Gr\xc3\xbc\xc3\x9f" "e",
	  /* message_id */ NULL,
	  186, 179, 0LL, 0 },
	{ "groups",
	  "From: a@b\n"
	  "To: undisclosed-recipients:;\n"
	  "Cc: list: ; , x@y\n"
	  "Bcc: @route1,@route2:user@host\n"
	  "Reply-To: <>\n"
	  "Sender: nodomain\n"
	  "Subject: groups\n"
	  "\n"
	  "hi\n",
	  138,
	  /* envelope */ "(NIL \"groups\" ((NIL NIL \"a\" \"b\")) ((NIL NIL \"nodomain\" \"MISSING_DOMAIN\")) ((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\")) ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) ((NIL NIL \"list\" NIL)(NIL NIL NIL NIL)(NIL NIL \"x\" \"y\")) ((NIL NIL \"MISSING_MAILBOX\" \"route1\")(NIL NIL \"MISSING_MAILBOX\" \"route2\")) NIL NIL)",
	  /* body */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 4 1)",
	  /* bodystructure */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 4 1 NIL NIL NIL NIL)",
	  /* preview */ "hi",
	  /* message_id */ NULL,
	  147, 143, 0LL, 0 },
	{ "digest",
	  "From: a@b\n"
	  "Subject: digest\n"
	  "Content-Type: multipart/digest; boundary=D\n"
	  "\n"
	  "--D\n"
	  "\n"
	  "From: d1@x\n"
	  "Subject: one\n"
	  "\n"
	  "body one\n"
	  "--D\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "plain in digest\n"
	  "--D--\n",
	  161,
	  /* envelope */ "(NIL \"digest\" ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)",
	  /* body */ "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 36 (NIL \"one\" ((NIL NIL \"d1\" \"x\")) ((NIL NIL \"d1\" \"x\")) ((NIL NIL \"d1\" \"x\")) NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 8 0) 3)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 15 0) \"DIGEST\")",
	  /* bodystructure */ "((\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 36 (NIL \"one\" ((NIL NIL \"d1\" \"x\")) ((NIL NIL \"d1\" \"x\")) ((NIL NIL \"d1\" \"x\")) NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 8 0 NIL NIL NIL NIL) 3 NIL NIL NIL NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 15 0 NIL NIL NIL NIL) \"DIGEST\" (\"BOUNDARY\" \"D\") NIL NIL NIL)",
	  /* preview */ "body one",
	  /* message_id */ NULL,
	  176, 74, 0LL, 0 },
	{ "noboundary",
	  "From: a@b\n"
	  "Content-Type: multipart/mixed; boundary=NOPE\n"
	  "\n"
	  "no boundary at all\n",
	  75,
	  /* envelope */ "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)",
	  /* body */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0) \"MIXED\")",
	  /* bodystructure */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"NOPE\") NIL NIL NIL)",
	  /* preview */ NULL,
	  /* message_id */ NULL,
	  79, 59, 0LL, 0 },
	{ "nonl",
	  "From: a@b\n"
	  "Subject: no final newline\n"
	  "\n"
	  "line1\n"
	  "line2",
	  48,
	  /* envelope */ "(NIL \"no final newline\" ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)",
	  /* body */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 1)",
	  /* bodystructure */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 12 1 NIL NIL NIL NIL)",
	  /* preview */ "line1 line2",
	  /* message_id */ NULL,
	  52, 40, 0LL, 0 },
	{ "unterminated",
	  "From: a@b\n"
	  "Content-Type: multipart/mixed; boundary=Q\n"
	  "\n"
	  "--Q\n"
	  "Content-Type: text/plain\n"
	  "\n"
	  "unterminated part\n",
	  101,
	  /* envelope */ "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)",
	  /* body */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 19 1) \"MIXED\")",
	  /* bodystructure */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 19 1 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"Q\") NIL NIL NIL)",
	  /* preview */ "unterminated part",
	  /* message_id */ NULL,
	  108, 56, 0LL, 0 },
	{ "bprefix",
	  "From: a@b\n"
	  "Content-Type: multipart/mixed; boundary=b\n"
	  "\n"
	  "--b\n"
	  "\n"
	  "one\n"
	  "--bX\n"
	  "\n"
	  "two\n"
	  "--b  \n"
	  "\n"
	  "three\n"
	  "--b--x\n",
	  92,
	  /* envelope */ "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)",
	  /* body */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 0)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 0)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 0) \"MIXED\")",
	  /* bodystructure */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 0 NIL NIL NIL NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 3 0 NIL NIL NIL NIL)(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 5 0 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"b\") NIL NIL NIL)",
	  /* preview */ "one",
	  /* message_id */ NULL,
	  105, 56, 0LL, 0 },
	{ "noboundaryparam",
	  "From: a@b\n"
	  "Content-Type: multipart/mixed\n"
	  "\n"
	  "no boundary parameter\n",
	  63,
	  /* envelope */ "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL)",
	  /* body */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0) \"MIXED\")",
	  /* bodystructure */ "((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL) \"MIXED\" NIL NIL NIL NIL)",
	  /* preview */ NULL,
	  /* message_id */ NULL,
	  67, 44, 0LL, 0 },
	{ "html",
	  "From: h@example.com\n"
	  "Content-Type: text/html; charset=iso-8859-1\n"
	  "\n"
	  "<html><head><title>T</title><style>p{}</style></head><body><p>Caf\xe9 &amp; <b>bar</b></p><script>x()</script><!-- c --> end</body></html>\n",
	  201,
	  /* envelope */ "(NIL NIL ((NIL NIL \"h\" \"example.com\")) ((NIL NIL \"h\" \"example.com\")) ((NIL NIL \"h\" \"example.com\")) NIL NIL NIL NIL NIL)",
	  /* body */ "(\"TEXT\" \"HTML\" (\"CHARSET\" \"iso-8859-1\") NIL NIL \"7BIT\" 137 1)",
	  /* bodystructure */ "(\"TEXT\" \"HTML\" (\"CHARSET\" \"iso-8859-1\") NIL NIL \"7BIT\" 137 1 NIL NIL NIL NIL)",
	  /* preview */ "Caf\xc3\xa9 & bar end",
	  /* message_id */ NULL,
	  205, 68, 0LL, 0 },
	{ "comments",
	  "From: (lead) john.doe (the \\(real\\) one) @ example . com\n"
	  "To: \"a \\\\ b\" <\"quoted local\"@[10.0.0.1]>,, ,Mary Smith <@r1,@r2:mary@x.example>\n"
	  "Cc: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\n"
	  "Subject: tab\tand \"quotes\"\n"
	  "\n",
	  230,
	  /* envelope */ "(NIL {16}\r\n"
	  "tab\tand \"quotes\" ((\"the (real) one\" NIL \"john.doe\" \"example.com\")) ((\"the (real) one\" NIL \"john.doe\" \"example.com\")) ((\"the (real) one\" NIL \"john.doe\" \"example.com\")) ((\"a \\\\ b\" NIL \"quoted local\" \"[10.0.0.1]\")(\"Mary Smith\" \"@r1,@r2\" \"mary\" \"x.example\")) ((\"Pete\" NIL \"pete\" \"silly.test\")) NIL NIL NIL)",
	  /* body */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0)",
	  /* bodystructure */ "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"us-ascii\") NIL NIL \"7BIT\" 0 0 NIL NIL NIL NIL)",
	  /* preview */ NULL,
	  /* message_id */ NULL,
	  235, 235, 0LL, 0 },
};

#define NGOLDEN (sizeof(goldens) / sizeof(goldens[0]))

/* IMAP syntax is balanced: parentheses outside quoted strings and
 * literals never go below zero and end at zero; quoted strings end. */
static int
balanced(const char *s)
{
	int depth = 0;

	while (*s != '\0') {
		if (*s == '"') {
			for (s++; *s != '"'; s++) {
				if (*s == '\0' || *s == '\r' || *s == '\n')
					return 0;
				if (*s == '\\')
					s++;
			}
			s++;
		} else if (*s == '{') {
			char *end;
			unsigned long n = strtoul(s + 1, &end, 10);

			if (end[0] != '}' || end[1] != '\r' || end[2] != '\n' || strlen(end + 3) < n)
				return 0;
			s = end + 3 + n;
		} else {
			if (*s == '(')
				depth++;
			else if (*s == ')' && --depth < 0)
				return 0;
			s++;
		}
	}
	return depth == 0;
}

/* Valid UTF-8 and at most max characters. */
static int
utf8_ok(const char *str, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t chars = 0;

	while (*s != '\0') {
		unsigned n = *s < 0x80 ? 0 : (*s & 0xe0) == 0xc0 ? 1 : (*s & 0xf0) == 0xe0 ? 2
			   : (*s & 0xf8) == 0xf0 ? 3 : 9;

		if (n == 9)
			return 0;
		for (unsigned k = 1; k <= n; k++)
			if ((s[k] & 0xc0) != 0x80)
				return 0;
		s += n + 1;
		chars++;
	}
	return chars <= max;
}

static void
summarize(const char *msg, size_t len, struct store_mime_summary *sum)
{
	const char *error = NULL;

	assert_int_equal(store_mime_summarize(msg, len, sum, &error), 0);
	assert_non_null(sum->envelope);
	assert_non_null(sum->body);
	assert_non_null(sum->bodystructure);
	assert_true(balanced(sum->envelope));
	assert_true(balanced(sum->body));
	assert_true(balanced(sum->bodystructure));
	if (sum->preview != NULL)
		assert_true(utf8_ok(sum->preview, 200));
}

static void
check_golden(const struct golden *g, const struct store_mime_summary *s)
{
	print_message("message %s\n", g->name);
	assert_string_equal(s->envelope, g->envelope);
	assert_string_equal(s->body, g->body);
	assert_string_equal(s->bodystructure, g->bodystructure);
	if (g->preview == NULL)
		assert_null(s->preview);
	else
		assert_string_equal(s->preview, g->preview);
	if (g->message_id == NULL)
		assert_null(s->message_id);
	else
		assert_string_equal(s->message_id, g->message_id);
	assert_int_equal(s->size, g->size);
	assert_int_equal(s->header_len, g->header_len);
	assert_int_equal(s->date, g->date);
	assert_int_equal(s->has_attachment, g->has_attachment);
	assert_int_equal(s->truncated, 0);
}

static void
test_golden(void **state)
{
	(void)state;
	for (size_t i = 0; i < NGOLDEN; i++) {
		struct store_mime_summary s;

		summarize(goldens[i].msg, goldens[i].len, &s);
		check_golden(&goldens[i], &s);
		/* the header block is the message's up to its blank line, CRLF */
		assert_non_null(s.header);
		assert_int_equal(strlen(s.header), s.header_len);
		store_mime_summary_free(&s);
	}
}

static char *
to_crlf(const char *s, size_t len, size_t *len_r)
{
	char *r = malloc(2 * len + 1);
	size_t k = 0;

	assert_non_null(r);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			r[k++] = '\r';
		r[k++] = s[i];
	}
	r[k] = '\0';
	*len_r = k;
	return r;
}

/* The same message with CRLF line ends gives the same summary. */
static void
test_crlf_same(void **state)
{
	(void)state;
	for (size_t i = 0; i < NGOLDEN; i++) {
		struct store_mime_summary s, s2;
		size_t len;
		char *crlf = to_crlf(goldens[i].msg, goldens[i].len, &len);

		summarize(goldens[i].msg, goldens[i].len, &s);
		summarize(crlf, len, &s2);
		check_golden(&goldens[i], &s2);
		assert_string_equal(s.header, s2.header);
		/* the CRLF input's size is its length */
		assert_int_equal(s2.size, (long long)len);
		store_mime_summary_free(&s);
		store_mime_summary_free(&s2);
		free(crlf);
	}
}

/* Every prefix, from a buffer that ends at a guard page: no read past
 * the end, always a balanced summary (STYLE.md rule 9). */
static void
test_prefixes(void **state)
{
	(void)state;
	for (size_t i = 0; i < NGOLDEN; i++) {
		for (size_t k = 0; k <= goldens[i].len; k++) {
			struct store_mime_summary s;
			struct guard g;
			size_t off, len;

			guard_init(&g, goldens[i].msg, k);
			summarize(g.p, k, &s);
			assert_true(s.size >= (long long)k);
			store_mime_summary_free(&s);
			(void)store_mime_section(g.p, k, "1", &off, &len);
			assert_true(off + len <= k);
			(void)store_mime_section(g.p, k, "2.1.TEXT", &off, &len);
			assert_true(off + len <= k);
			guard_free(&g);
		}
	}
}

static const struct golden *
golden(const char *name)
{
	for (size_t i = 0; i < NGOLDEN; i++)
		if (strcmp(goldens[i].name, name) == 0)
			return &goldens[i];
	fail_msg("no golden message %s", name);
	return NULL;
}

/* section of msg is exactly want; want NULL: no such part. */
static void
check_section(const struct golden *g, const char *section, const char *want)
{
	size_t off = 99, len = 99;
	int rc = store_mime_section(g->msg, g->len, section, &off, &len);

	print_message("%s [%s]\n", g->name, section);
	if (want == NULL) {
		assert_int_equal(rc, 1);
		assert_int_equal(off, 0);
		assert_int_equal(len, 0);
		return;
	}
	assert_int_equal(rc, 0);
	assert_true(off + len <= g->len);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(g->msg + off, want, len);
}

static void
test_sections(void **state)
{
	const struct golden *plain = golden("plain"), *rfc = golden("rfc822");
	const struct golden *mixed = golden("mixed"), *alt = golden("alt");
	size_t off, len;

	(void)state;
	check_section(plain, "", plain->msg);
	check_section(plain, "1", "Hello there\nline 2\n");
	check_section(plain, "TEXT", "Hello there\nline 2\n");
	assert_int_equal(store_mime_section(plain->msg, plain->len, "HEADER", &off, &len), 0);
	assert_int_equal(off, 0);
	assert_true(len == plain->len - strlen("Hello there\nline 2\n"));
	assert_int_equal(store_mime_section(plain->msg, plain->len, "HEADER.FIELDS (FROM)", &off,
					    &len), 0);
	assert_int_equal(off, 0);
	check_section(plain, "2", NULL);
	check_section(plain, "1.1", NULL);
	check_section(plain, "1.HEADER", NULL);

	check_section(alt, "1", "Hi Bob, caf=C3=A9\nsecond line");
	check_section(alt, "2", "<html><body><p>Hi Bob</p></body></html>");
	check_section(alt, "1.MIME", "Content-Type: text/plain; charset=utf-8\n"
				     "Content-Transfer-Encoding: quoted-printable\n\n");
	check_section(alt, "3", NULL);

	check_section(mixed, "2", "JVBERi0xLjQK\nJVBERi0xLjQK");
	check_section(mixed, "3", "x");

	check_section(rfc, "1", "see below");
	check_section(rfc, "1.MIME", "\n");
	check_section(rfc, "2.HEADER", "From: Inner <inner@example.com>\n"
				       "To: someone@example.com\n"
				       "Subject: inner subject\n"
				       "Date: Sun, 29 Nov 2026 16:46:22 +0000\n"
				       "Message-ID: <inner@x>\n"
				       "In-Reply-To: <prev@x>\n"
				       "Content-Type: multipart/alternative; boundary=YY\n\n");
	check_section(rfc, "2.1", "inner text");
	check_section(rfc, "2.2", "<b>inner</b>");
	check_section(rfc, "2.2.MIME", "Content-Type: text/html\n\n");
	check_section(rfc, "2.TEXT", "--YY\nContent-Type: text/plain\n\ninner text\n--YY\n"
				     "Content-Type: text/html\n\n<b>inner</b>\n--YY--\n");
	check_section(rfc, "2.3", NULL);
	check_section(rfc, "1.TEXT", NULL);
	check_section(rfc, "9.9.9", NULL);

	/* malformed specs */
	assert_int_equal(store_mime_section(plain->msg, plain->len, "0", &off, &len), -1);
	assert_int_equal(store_mime_section(plain->msg, plain->len, "1.", &off, &len), -1);
	assert_int_equal(store_mime_section(plain->msg, plain->len, "01", &off, &len), -1);
	assert_int_equal(store_mime_section(plain->msg, plain->len, "MIME", &off, &len), -1);
	assert_int_equal(store_mime_section(plain->msg, plain->len, "1.FOO", &off, &len), -1);
	assert_int_equal(store_mime_section(plain->msg, plain->len, "1x", &off, &len), -1);
}

/* A message/rfc822 that is itself not multipart: its part 1 is its body. */
static void
test_section_single_rfc822(void **state)
{
	static const char msg[] = "Content-Type: message/rfc822\n\nSubject: in\n\ninner body\n";
	size_t off, len;

	(void)state;
	assert_int_equal(store_mime_section(msg, strlen(msg), "1", &off, &len), 0);
	assert_int_equal(off, strlen("Content-Type: message/rfc822\n\n"));
	assert_int_equal(store_mime_section(msg, strlen(msg), "1.1", &off, &len), 0);
	assert_int_equal(len, strlen("inner body\n"));
	assert_memory_equal(msg + off, "inner body\n", len);
	assert_int_equal(store_mime_section(msg, strlen(msg), "1.HEADER", &off, &len), 0);
	assert_memory_equal(msg + off, "Subject: in\n\n", len);
}

static long
peak_rss_mib(void)
{
	struct rusage ru;

	assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
	return ru.ru_maxrss / 1024;
}

struct sbuf {
	char *s;
	size_t len, cap;
};

static void
sb_add(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		assert_non_null(b->s);
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

static void
check_bomb(struct sbuf *b, const char *what)
{
	struct store_mime_summary s;
	size_t off, len;

	print_message("bomb: %s, %zu bytes\n", what, b->len);
	summarize(b->s, b->len, &s);
	assert_int_equal(s.truncated, 1);
	assert_true(strlen(s.bodystructure) < 1024 * 1024);
	store_mime_summary_free(&s);
	assert_true(store_mime_section(b->s, b->len, "1.1.1.1.1.1.1.1", &off, &len) >= 0);
	free(b->s);
	print_message("peak RSS %ld MiB\n", peak_rss_mib());
	assert_true(peak_rss_mib() < 200);
}

static void
test_bomb_parts(void **state)
{
	struct sbuf b = { 0 };
	struct store_mime_summary s;

	(void)state;
	sb_add(&b, "From: bomb@example.com\nContent-Type: multipart/mixed; boundary=B\n\n");
	for (int i = 0; i < 100000; i++)
		sb_add(&b, "--B\nContent-Type: text/plain\n\nx\n");
	sb_add(&b, "--B--\n");
	summarize(b.s, b.len, &s);
	/* the bound is the parts kept, and the rest is one more part */
	assert_non_null(strstr(s.body, "(\"APPLICATION\" \"OCTET-STREAM\" NIL NIL NIL \"7BIT\""));
	{
		long long lf = 0;

		for (size_t i = 0; i < b.len; i++)
			lf += b.s[i] == '\n';
		assert_int_equal(s.size, (long long)b.len + lf);
	}
	store_mime_summary_free(&s);
	check_bomb(&b, "100000 parts");
}

static void
test_bomb_deep_multipart(void **state)
{
	struct sbuf b = { 0 };
	char line[96];

	(void)state;
	sb_add(&b, "From: bomb@example.com\n");
	for (int i = 0; i < 10000; i++) {
		snprintf(line, sizeof(line), "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n",
			 i, i);
		sb_add(&b, line);
	}
	sb_add(&b, "Content-Type: text/plain\n\ndeep\n");
	check_bomb(&b, "10000 levels of multipart");
}

static void
test_bomb_deep_message(void **state)
{
	struct sbuf b = { 0 };

	(void)state;
	for (int i = 0; i < 10000; i++)
		sb_add(&b, "From: a@example.com\nContent-Type: message/rfc822\n\n");
	sb_add(&b, "Subject: deep\n\ndeep\n");
	check_bomb(&b, "10000 levels of message/rfc822");
}

static void
test_bomb_header(void **state)
{
	struct sbuf b = { 0 };
	struct store_mime_summary s;

	(void)state;
	sb_add(&b, "From: bomb@example.com\nSubject: big\n");
	while (b.len < 5 * 1024 * 1024)
		sb_add(&b, "X-Filler: 0123456789012345678901234567890123456789012345678901234567\n");
	sb_add(&b, "To: late@example.com\n\nbody\n");
	summarize(b.s, b.len, &s);
	assert_null(s.header); /* beyond STORE_MIME_KEEP_HEADER */
	assert_true(s.header_len > 5 * 1024 * 1024);
	assert_non_null(strstr(s.envelope, "\"bomb\" \"example.com\""));
	/* a field past STORE_MIME_MAX_HEADER is not parsed */
	assert_null(strstr(s.envelope, "late"));
	assert_string_equal(s.preview, "body");
	store_mime_summary_free(&s);
	check_bomb(&b, "5 MiB header");
}

/* One To: field of 5 MiB: bounded too. */
static void
test_bomb_field(void **state)
{
	struct sbuf b = { 0 };

	(void)state;
	sb_add(&b, "To: a@example.com");
	while (b.len < 5 * 1024 * 1024)
		sb_add(&b, ", \"x\" <b@example.com>\n (c) (d)");
	sb_add(&b, "\n\nbody\n");
	check_bomb(&b, "one 5 MiB field");
}

static void
test_preview(void **state)
{
	struct sbuf b = { 0 };
	struct store_mime_summary s;

	(void)state;
	/* base64 text, long: 200 characters of valid UTF-8 */
	sb_add(&b, "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n");
	for (int i = 0; i < 100; i++)
		sb_add(&b, "w6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOpw6nDqcOp\n");
	summarize(b.s, b.len, &s);
	assert_non_null(s.preview);
	assert_int_equal(strlen(s.preview), 400); /* 200 times U+00E9 */
	assert_true(utf8_ok(s.preview, 200));
	store_mime_summary_free(&s);
	free(b.s);

	/* invalid UTF-8 comes out valid */
	summarize("Content-Type: text/plain; charset=utf-8\n\nab\xff\xfe" "cd\xc3\n", 47, &s);
	assert_true(utf8_ok(s.preview, 200));
	store_mime_summary_free(&s);

	/* an attachment is no preview; no text part: NULL */
	static const char att[] = "Content-Type: multipart/mixed; boundary=z\n\n--z\n"
				  "Content-Type: text/plain\nContent-Disposition: attachment\n\nsecret\n"
				  "--z\nContent-Type: image/png\n\nPNG\n--z--\n";
	summarize(att, strlen(att), &s);
	assert_null(s.preview);
	assert_int_equal(s.has_attachment, 1);
	store_mime_summary_free(&s);
}

/* Found by fuzzing: a Content-Language list longer than a printf buffer
 * came out cut, and a NUL in the header made the header string shorter
 * than header_len. */
static void
test_fuzz_regressions(void **state)
{
	struct sbuf b = { 0 };
	struct store_mime_summary s;
	static const char nul[] = "Subject: a\0b\n\nbody\n";

	(void)state;
	sb_add(&b, "Content-Language: en");
	for (int i = 0; i < 40; i++)
		sb_add(&b, ", de-CH-1901");
	sb_add(&b, "\n\nbody\n");
	summarize(b.s, b.len, &s);
	assert_non_null(strstr(s.bodystructure, "\"de-CH-1901\") NIL)"));
	store_mime_summary_free(&s);
	free(b.s);

	summarize(nul, sizeof(nul) - 1, &s);
	assert_int_equal(strlen(s.header), s.header_len);
	assert_memory_equal(s.header, "Subject: a\x80" "b\r\n\r\n", s.header_len);
	store_mime_summary_free(&s);
}

static void *
thread_main(void *arg)
{
	(void)arg;
	for (int n = 0; n < 50; n++)
		for (size_t i = 0; i < NGOLDEN; i++) {
			struct store_mime_summary s;
			const char *error;

			if (store_mime_summarize(goldens[i].msg, goldens[i].len, &s, &error) != 0 ||
			    strcmp(s.bodystructure, goldens[i].bodystructure) != 0 ||
			    (s.preview != NULL) != (goldens[i].preview != NULL))
				return (void *)1;
			store_mime_summary_free(&s);
		}
	return NULL;
}

/* GMime is set up once whichever thread comes first; no shared state. */
static void
test_threads(void **state)
{
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *rv;

		assert_int_equal(pthread_join(t[i], &rv), 0);
		assert_null(rv);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* first, so the peak RSS is theirs (and not the sanitizer's
		 * quarantine of what the tests before freed) */
		cmocka_unit_test(test_bomb_parts),
		cmocka_unit_test(test_bomb_deep_multipart),
		cmocka_unit_test(test_bomb_deep_message),
		cmocka_unit_test(test_bomb_header),
		cmocka_unit_test(test_bomb_field),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_crlf_same),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_section_single_rfc822),
		cmocka_unit_test(test_preview),
		cmocka_unit_test(test_fuzz_regressions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
