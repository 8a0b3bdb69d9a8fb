/*
 * config_reload: what SIGHUP may change. Each table row says whether its
 * key reloads or needs a restart; config_reload_diff applies the first kind
 * and names the second. Public: config_reload_diff.
 */
#include "conf/config_int.h"

int
config_reload_diff(struct config *cur, const struct config *next, FILE *report)
{
	int restart = 0;

	for (size_t i = 0; i < config_table_count; i++) {
		const struct config_key *k = &config_table[i];

		if (config_value_equal(cur, next, k))
			continue;
		if (k->flags & CONFIG_F_RELOAD) {
			config_value_copy(cur, next, k);
			if (report != NULL)
				fprintf(report, "[%s] %s: reloaded\n", k->section, k->key);
		} else {
			restart++;
			if (report != NULL)
				fprintf(report, "[%s] %s: changed, needs a restart (keeps its old value)\n",
					k->section, k->key);
		}
	}
	return restart;
}
