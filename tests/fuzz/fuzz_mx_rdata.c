/*
 * fuzz_mx_rdata: the MX record data parser of the resolver, on any bytes a
 * DNS server may send.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/resolver.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char host[256];
	uint16_t pref;
	int rc = resolver_mx_rdata_parse(data, size, &pref, host, sizeof(host));

	if (rc == 0 && strlen(host) >= sizeof(host))
		abort();
	return 0;
}
