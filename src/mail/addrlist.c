/*
 * addrlist: address fields through GMime's parser (see addrlist.h).
 */
#include <gmime/gmime.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "mail/addr.h"
#include "mail/addrlist.h"

static pthread_once_t addrlist_once = PTHREAD_ONCE_INIT;

static void
addrlist_init(void)
{
	g_mime_init();
}

/* One mailbox: its address as an SMTP path would give it, or -1. */
static int
addrlist_mailbox(InternetAddress *ia, const char *origin, int (*fn)(const char *addr, void *arg),
		 void *arg)
{
	const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
	char path[ADDR_MAX + 2], canon[ADDR_MAX];
	size_t used;
	int n;

	if (a == NULL || a[0] == '\0')
		return -1;
	if (strchr(a, '@') == NULL && origin != NULL)
		n = snprintf(path, sizeof(path), "<%s@%s>", a, origin);
	else
		n = snprintf(path, sizeof(path), "<%s>", a);
	if (n < 0 || (size_t)n >= sizeof(path) ||
	    addr_parse_path(path, (size_t)n, 0, 1, canon, &used) != ADDR_OK || used != (size_t)n)
		return -1;
	return fn(canon, arg) == 0 ? 0 : -1;
}

static int
addrlist_walk(InternetAddressList *l, int allow_groups, const char *origin, int depth,
	      int (*fn)(const char *addr, void *arg), void *arg)
{
	int count = 0, n = internet_address_list_length(l);

	for (int i = 0; i < n; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);

		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			InternetAddressList *m;
			int k;

			if (!allow_groups || depth > 0)
				return -1;   /* RFC 5322: groups do not nest */
			m = internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia));
			if (m == NULL)
				continue;
			if ((k = addrlist_walk(m, allow_groups, origin, depth + 1, fn, arg)) < 0)
				return -1;
			count += k;
		} else if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			if (addrlist_mailbox(ia, origin, fn, arg) != 0)
				return -1;
			count++;
		} else {
			return -1;
		}
	}
	return count;
}

int
addrlist_each(const char *value, int allow_groups, const char *origin,
	      int (*fn)(const char *addr, void *arg), void *arg)
{
	InternetAddressList *l;
	int n;

	pthread_once(&addrlist_once, addrlist_init);
	if ((l = internet_address_list_parse(NULL, value)) == NULL)
		return -1;
	n = addrlist_walk(l, allow_groups, origin, 0, fn, arg);
	g_object_unref(l);
	return n;
}
