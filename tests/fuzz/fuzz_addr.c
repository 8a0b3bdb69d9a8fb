/*
 * fuzz_addr: libFuzzer harness for addr_parse_path (src/mail/addr.h).
 * The first byte picks allow_null and utf8, the rest is the path. An
 * accepted path must give a clean canonical address: "" only for "<>",
 * one '@' before a non-empty lower-case domain, no control octets, within
 * the RFC 5321 limits, ASCII unless utf8, and "<" addr ">" must parse back
 * to the same address. The input buffer is exactly its length, so any read
 * past it is an ASan error.
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
