/*
 * config_int: the config table's row and the per-type value operations,
 * shared inside src/conf/ only. Module-internal: config_table,
 * config_table_count, config_table_find (config_table.c); config_value_set,
 * config_value_append, config_value_format, config_value_format_number,
 * config_value_is_set, config_value_equal,
 * config_value_copy, config_value_free (config_value.c).
 */
#ifndef TANDEM_CONFIG_INT_H
#define TANDEM_CONFIG_INT_H
#include "conf/config.h"

/* How a value is written in the file and stored in struct config. */
enum config_type {
	CT_STRING,      /* char *, not empty */
	CT_PATH,        /* char *, an absolute path */
	CT_DELIM,       /* char *, "" or one character of CONFIG_DELIMITERS */
	CT_DOMAIN,      /* char *, a domain name (case kept) */
	CT_HOSTPORT,    /* char *, HOST[:PORT], HOST a domain or a numeric address */
	CT_RESOLVER,    /* char *, "system" or ADDR[@PORT] with a numeric ADDR */
	CT_BOOL,        /* int, yes|no */
	CT_ENUM,        /* int, one of names[] */
	CT_UINT,        /* unsigned */
	CT_DURATION,    /* unsigned seconds */
	CT_MSEC,        /* unsigned milliseconds ("500ms" or a duration) */
	CT_SIZE,        /* unsigned long long bytes */
	CT_LISTEN,      /* config_list of numeric ADDR:PORT */
	CT_HOSTPORTS,   /* config_list of HOST[:PORT] */
	CT_DOMAINS,     /* config_list of domain names (lower-cased) */
	CT_NETLIST,     /* config_netlist of addresses and CIDR networks */
};

#define CONFIG_DELIMITERS "+-_=~"

/* Row flags. */
#define CONFIG_F_RELOAD  0x1   /* SIGHUP applies a new value; else restart */
#define CONFIG_F_SYSHOST 0x2   /* default: the system host name */

struct config_key {
	const char *section, *key;
	enum config_type type;
	size_t off;                  /* the field in struct config */
	const char *def;             /* default in the file's syntax; NULL: unset */
	long long min, max;          /* CT_UINT, CT_DURATION (s), CT_MSEC (ms), CT_SIZE;
				      * CT_LISTEN etc.: max entries (0: CONFIG_MAX_LIST) */
	const char *const *names;    /* CT_ENUM: value i is names[i], NULL-terminated */
	unsigned flags;
	const char *def_doc;         /* the default as the docs say it, when not def */
	const char *doc;             /* one line for README and check-config --doc */
};

extern const struct config_key config_table[];
extern const size_t config_table_count;
/* The row of section/key, or NULL. */
const struct config_key *config_table_find(const char *section, const char *key);

/* Parse value into k's field of cf (replacing what was there). NULL on
 * success, else the message for "[section] key: MESSAGE". */
const char *config_value_set(struct config *cf, const struct config_key *k, const char *value);
/* An indented line continues a list key: its entries are added. */
const char *config_value_append(struct config *cf, const struct config_key *k, const char *value);
/* The value in the file's syntax; "" for an unset string. Returns buf. */
const char *config_value_format(const struct config *cf, const struct config_key *k,
				char *buf, size_t len);
/* A number of k's type in the file's syntax ("5m", "16M", "500ms"). */
const char *config_value_format_number(const struct config_key *k, unsigned long long v,
				       char *buf, size_t len);
int config_value_is_set(const struct config *cf, const struct config_key *k);
int config_value_equal(const struct config *a, const struct config *b, const struct config_key *k);
/* Replace dst's value with a copy of src's. */
void config_value_copy(struct config *dst, const struct config *src, const struct config_key *k);
void config_value_free(struct config *cf, const struct config_key *k);

#endif
