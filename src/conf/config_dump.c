/*
 * config_dump: the table read back: `check-config -v` prints every key
 * with its effective value and whether SIGHUP applies it; `check-config
 * --doc` prints README's configuration table. Public: config_dump,
 * config_dump_doc.
 */
#include <stdlib.h>
#include <string.h>

#include "conf/config_int.h"
#include "util/xalloc.h"

#define DUMP_VALUE_MAX 8192

void
config_dump(const struct config *cf, FILE *out)
{
	char *v = xmalloc(DUMP_VALUE_MAX), line[DUMP_VALUE_MAX + 128];
	const char *section = "";

	for (size_t i = 0; i < config_table_count; i++) {
		const struct config_key *k = &config_table[i];
		const char *mark = k->flags & CONFIG_F_RELOAD ? "# reload" : "# restart";

		if (strcmp(section, k->section) != 0)
			fprintf(out, "%s[%s]\n", i ? "\n" : "", section = k->section);
		config_value_format(cf, k, v, DUMP_VALUE_MAX);
		/* An unset key prints as a comment, so the output loads again. */
		if (!config_value_is_set(cf, k))
			snprintf(line, sizeof(line), "# %s =", k->key);
		else
			snprintf(line, sizeof(line), "%s = %s", k->key, v);
		fprintf(out, "%-40s %s%s%s\n", line, mark,
			config_value_is_set(cf, k) ? "" : ", unset: ",
			config_value_is_set(cf, k) ? "" : k->def_doc ? k->def_doc : "(none)");
	}
	free(v);
}

/* "1–64", "1s–5m", "≥ 1", or "" when the type's own limits apply. */
static const char *
dump_range(const struct config_key *k, char *buf, size_t len)
{
	char lo[32], hi[32];

	buf[0] = '\0';
	if (k->type != CT_UINT && k->type != CT_DURATION && k->type != CT_MSEC && k->type != CT_SIZE)
		return buf;
	if (k->max > 0)
		snprintf(buf, len, "%s–%s", config_value_format_number(k, k->min, lo, sizeof(lo)),
			 config_value_format_number(k, k->max, hi, sizeof(hi)));
	else if (k->min > 0)
		snprintf(buf, len, "≥ %s", config_value_format_number(k, k->min, lo, sizeof(lo)));
	return buf;
}

void
config_dump_doc(FILE *out)
{
	struct config *cf = xcalloc(1, sizeof(*cf));
	char *v = xmalloc(DUMP_VALUE_MAX);

	/* The defaults as a load of an empty file has them, less the host's own
	 * name: the README must not depend on the machine that built it. */
	for (size_t i = 0; i < config_table_count; i++)
		if (config_table[i].def != NULL && !(config_table[i].flags & CONFIG_F_SYSHOST))
			config_value_set(cf, &config_table[i], config_table[i].def);
	fprintf(out, "| section | key | default | range | SIGHUP | meaning |\n"
		     "|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < config_table_count; i++) {
		const struct config_key *k = &config_table[i];
		char range[80];

		fprintf(out, "| %s | `%s` | ", k->section, k->key);
		if (k->def != NULL && !(k->flags & CONFIG_F_SYSHOST))
			fprintf(out, "`%s`", config_value_format(cf, k, v, DUMP_VALUE_MAX));
		else
			fputs(k->def_doc ? k->def_doc : "(none)", out);
		fprintf(out, " | %s | %s | %s |\n", dump_range(k, range, sizeof(range)),
			k->flags & CONFIG_F_RELOAD ? "reload" : "restart", k->doc);
	}
	for (size_t i = 0; i < config_table_count; i++)
		config_value_free(cf, &config_table[i]);
	free(cf);
	free(v);
}
