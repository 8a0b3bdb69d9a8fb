/*
 * fuzz_addr: libFuzzer harness for addr_parse_path (src/mail/addr.h).
 * The first byte picks allow_null and utf8, the rest is the path. An
 * accepted path must give a clean canonical address: "" only for "<>",
 * one '@' before a non-empty lower-case domain, no control octets, within
 * the RFC 5321 limits, ASCII unless utf8 and then well-formed UTF-8, and
 * "<" addr ">" must parse back to the same address; a dot-string local part
 * put in quotes must come back unquoted ("a"@x is a@x). The input buffer is
 * exactly its length, so any read past it is an ASan error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/addr.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_addr: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

/* RFC 3629 by decoding: each sequence's code point must need exactly its
 * length and be no surrogate, nothing above U+10FFFF. */
static int
utf8_ok(const unsigned char *s)
{
	while (*s != '\0') {
		unsigned cp, n, min;

		if (*s < 0x80) {
			s++;
			continue;
		}
		if ((*s & 0xe0) == 0xc0)
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
	}
	return 1;
}

static void
check_canonical(const char *addr, int utf8)
{
	size_t alen = strlen(addr);
	const char *dom = addr_domain(addr);
	char again[ADDR_MAX + 2], addr2[ADDR_MAX];
	size_t used2;

	CHECK(alen + 2 <= ADDR_MAX);
	CHECK(strchr(addr, '@') != NULL);
	CHECK(dom[0] != '\0');
	CHECK(strlen(dom) <= ADDR_DOMAIN_MAX);
	CHECK((size_t)(dom - addr) - 1 <= ADDR_LOCAL_MAX);
	for (const char *p = addr; *p; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
	for (const char *p = dom; *p; p++)
		CHECK(!(*p >= 'A' && *p <= 'Z'));
	if (!utf8)
		CHECK(addr_is_ascii(addr));
	again[0] = '<';
	memcpy(again + 1, addr, alen);
	again[alen + 1] = '>';
	CHECK(addr_parse_path(again, alen + 2, 0, utf8, addr2, &used2) == ADDR_OK);
	CHECK(used2 == alen + 2);
	CHECK(strcmp(addr, addr2) == 0);
	if (!addr_is_ascii(addr))
		CHECK(utf8_ok((const unsigned char *)addr));
	if (addr[0] != '"' && (size_t)(dom - addr) - 1 <= ADDR_LOCAL_MAX - 2 && alen + 4 <= ADDR_MAX) {
		int l = snprintf(again, sizeof(again), "<\"%.*s\"@%s>", (int)(dom - addr - 1), addr, dom);

		CHECK(addr_parse_path(again, (size_t)l, 0, utf8, addr2, &used2) == ADDR_OK);
		CHECK(strcmp(addr, addr2) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char addr[ADDR_MAX], addr2[ADDR_MAX];
	int allow_null, utf8;
	size_t used = 0, used2 = 0, len;
	enum addr_err e;
	char *s;

	if (size < 1)
		return 0;
	allow_null = data[0] & 1;
	utf8 = (data[0] >> 1) & 1;
	len = size - 1;
	s = malloc(len ? len : 1);
	memcpy(s, data + 1, len);
	memset(addr, 'X', sizeof(addr));
	e = addr_parse_path(s, len, allow_null, utf8, addr, &used);
	CHECK(addr_error_str(e) != NULL);
	if (e == ADDR_OK) {
		CHECK(used >= 2 && used <= len);
		CHECK(s[0] == '<' && s[used - 1] == '>');
		if (addr[0] == '\0') {
			CHECK(allow_null);
			CHECK(used == 2);
		} else {
			check_canonical(addr, utf8);
		}
		/* more permissive flags never refuse what stricter ones took */
		CHECK(addr_parse_path(s, len, 1, 1, addr2, &used2) == ADDR_OK);
		CHECK(used2 == used && strcmp(addr, addr2) == 0);
		/* the bytes after '>' are not looked at */
		CHECK(addr_parse_path(s, used, allow_null, utf8, addr2, &used2) == ADDR_OK);
		CHECK(used2 == used && strcmp(addr, addr2) == 0);
	} else {
		CHECK(addr[0] == '\0');
	}
	free(s);
	return 0;
}
