/*
 * fuzz_imap_utf7: libFuzzer harness for modified UTF-7 folder names
 * (src/imap/imap_utf7.h). The input, NUL-terminated, is decoded and
 * encoded: a decoded name must encode back to the input exactly (one
 * spelling per folder), an encoded name must be printable ASCII and
 * decode back to the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_utf7.h"

#define CHECK(c) do { \
	if (!(c)) { \
		fprintf(stderr, "fuzz_imap_utf7: check failed: %s (line %d)\n", #c, __LINE__); \
		abort(); \
	} \
} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *a, *b;

	CHECK(in != NULL);
	memcpy(in, data, size);
	in[size] = '\0';
	if (imap_utf7_to_utf8(in, &a) == 0) {
		CHECK(imap_utf8_to_utf7(a, &b) == 0);
		CHECK(strcmp(b, in) == 0);
		free(a);
		free(b);
	} else {
		CHECK(a == NULL);
	}
	if (imap_utf8_to_utf7(in, &a) == 0) {
		for (const char *p = a; *p; p++)
			CHECK(*p >= 0x20 && *p <= 0x7e);
		CHECK(imap_utf7_to_utf8(a, &b) == 0);
		CHECK(strcmp(b, in) == 0);
		free(a);
		free(b);
	} else {
		CHECK(a == NULL);
	}
	free(in);
	return 0;
}
