/*
 * cmd_check_config: `tandem check-config [-v]`. The config has already
 * been parsed (errors name file, line and key); here the things a parse
 * cannot see are checked: files that must exist, addresses that must bind.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"

int
cmd_check_config(struct config *cf, int argc, char **argv)
{
	int problems = 0;

	if (cf->tls_cert && access(cf->tls_cert, R_OK) != 0) {
		fprintf(stderr, "%s: [tls] cert: cannot read %s\n", cf->path, cf->tls_cert);
		problems++;
	}
	if (cf->tls_key && access(cf->tls_key, R_OK) != 0) {
		fprintf(stderr, "%s: [tls] key: cannot read %s\n", cf->path, cf->tls_key);
		problems++;
	}
	if (cf->role == ROLE_PRIMARY && cf->relay_domains.n > 0)
		fprintf(stderr, "%s: note: [relay] domains on a primary: it will also act as a "
				"backup MX for them\n", cf->path);
	if (argc > 1 && strcmp(argv[1], "-v") == 0)
		config_dump(cf, stdout);
	if (problems)
		return 1;
	printf("%s: ok (role %s, data_dir %s)\n", cf->path,
	       cf->role == ROLE_PRIMARY ? "primary" : "backup", cf->data_dir);
	return 0;
}
