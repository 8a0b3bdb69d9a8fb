/*
 * imap_seqset: sequence sets ("1:5,7,9:*", RFC 3501 sequence-set) parsed
 * into sorted, merged ranges, with '*' standing for a given maximum; and
 * the UID ↔ sequence number mapping a session keeps.
 * Public: imap_seqset_parse, imap_seqset_free, imap_seqset_contains.
 */
#ifndef TANDEM_IMAP_SEQSET_H
#define TANDEM_IMAP_SEQSET_H
#include <stddef.h>
#include <stdint.h>

struct imap_seqset {
	uint32_t (*r)[2];     /* ranges lo..hi, sorted, disjoint, not adjacent */
	size_t n;
};

/* star: the value of '*' (the highest sequence number or UID; 0 for an
 * empty folder, where "*" and "1:*" give an empty set for UIDs). "0",
 * empty items, numbers over 2^32-1, more than 10000 items: -1. A range
 * "5:2" is 2:5. */
int imap_seqset_parse(const char *s, uint32_t star, struct imap_seqset *set_r);
void imap_seqset_free(struct imap_seqset *set);
int imap_seqset_contains(const struct imap_seqset *set, uint32_t v);

#endif
