/*
 * addrlist: the addresses of an RFC 5322 address field (From:, To:, Cc:),
 * parsed by GMime: quoted display names with commas, comments, groups
 * ("undisclosed-recipients:;"), folded values. Each mailbox's address comes
 * out canonical, as SMTP paths are (addr_parse_path), or the parse fails.
 * Public: addrlist_each.
 */
#ifndef TANDEM_ADDRLIST_H
#define TANDEM_ADDRLIST_H

/* Call fn(addr, arg) for each mailbox of value, the members of groups
 * included when allow_groups (else a group fails the parse). A mailbox
 * without a domain ("root") gets "@origin", or with origin NULL fails. fn
 * returns 0 to go on. Returns the number of mailboxes; -1 when value is no
 * address list, a mailbox is no valid address, a group is not allowed, or
 * fn returned nonzero. */
int addrlist_each(const char *value, int allow_groups, const char *origin,
		  int (*fn)(const char *addr, void *arg), void *arg);

#endif
