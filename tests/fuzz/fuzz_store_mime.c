/*
 * fuzz_store_mime: libFuzzer harness for store_mime_summarize and
 * store_mime_section (src/store/store_mime.h). The input is the message.
 * The summary must always exist, with ENVELOPE, BODY and BODYSTRUCTURE in
 * balanced IMAP syntax (parentheses outside quoted strings and literals
 * never below zero and back at zero, quoted strings closed on their line,
 * literals as long as they say), a preview of valid UTF-8 within 200
 * characters, a header block as long as header_len, and sizes no smaller
 * than the input; every section found lies inside the input. The input
 * buffer is exactly its length, so any read past it is an ASan error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_mime.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_store_mime: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

static int
balanced(const char *s)
{
	int depth = 0;

	while (*s != '\0') {
		if (*s == '"') {
			for (s++; *s != '"'; s++) {
				if (*s == '\0' || *s == '\r' || *s == '\n' || (unsigned char)*s >= 0x80)
					return 0;
				if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					s++;
				else if (*s == '\\')
					return 0;
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

static int
utf8_ok(const unsigned char *s, size_t max)
{
	size_t chars = 0;

	while (*s != '\0') {
		unsigned n, cp, min;

		if (*s < 0x80)
			n = 0, cp = *s, min = 0;
		else if ((*s & 0xe0) == 0xc0)
			n = 1, cp = *s & 0x1f, min = 0x80;
		else if ((*s & 0xf0) == 0xe0)
			n = 2, cp = *s & 0x0f, min = 0x800;
		else if ((*s & 0xf8) == 0xf0)
			n = 3, cp = *s & 0x07, min = 0x10000;
		else
			return 0;
		for (unsigned k = 1; k <= n; k++) {
			if ((s[k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		s += n + 1;
		chars++;
	}
	return chars <= max;
}

static const char *const sections[] = {
	"", "1", "2", "1.MIME", "1.1", "2.HEADER", "2.TEXT", "HEADER", "TEXT",
	"1.2.3", "2.1.MIME", "3.1.HEADER", "1.HEADER.FIELDS (FROM)", "0", "1..2",
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_mime_summary s;
	const char *error = NULL;
	char *msg = malloc(size ? size : 1);

	memcpy(msg, data, size);
	CHECK(store_mime_summarize(msg, size, &s, &error) == 0);
	CHECK(s.envelope != NULL && balanced(s.envelope));
	CHECK(s.body != NULL && balanced(s.body));
	CHECK(s.bodystructure != NULL && balanced(s.bodystructure));
	CHECK(s.envelope[0] == '(' && s.body[0] == '(' && s.bodystructure[0] == '(');
	CHECK(s.size >= (long long)size && s.size <= 2 * (long long)size);
	CHECK((long long)s.header_len <= s.size);
	CHECK(s.header == NULL || strlen(s.header) == s.header_len);
	CHECK(s.header != NULL || s.header_len > STORE_MIME_KEEP_HEADER);
	CHECK(s.preview == NULL || utf8_ok((const unsigned char *)s.preview, 200));
	CHECK(s.message_id == NULL || s.message_id[0] == '<');
	store_mime_summary_free(&s);

	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		size_t off = 0, len = 0;
		int rc = store_mime_section(msg, size, sections[i], &off, &len);

		CHECK(rc >= -1 && rc <= 1);
		CHECK(off <= size && len <= size - off);
		if (rc != 0)
			CHECK(off == 0 && len == 0);
	}
	free(msg);
	return 0;
}
