/* backupctl config check|help: validate the config and print the effective
 * values with secrets masked, or list every option the table knows. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"

int cli_config(struct cli_ctx *ctx, int argc, char **argv, struct err *e)
{
	const struct cli_verb *v = NULL;
	int first, rc;

	for (unsigned i = 0; i < cli_n_verbs; i++)
		if (strcmp(cli_verbs[i].name, "config") == 0)
			v = &cli_verbs[i];
	rc = cli_parse(ctx, v, argc, argv, NULL, NULL, NULL, NULL, &first, e);
	if (rc)
		return rc;
	if (first >= argc)
		return err_set(e, ERR_USAGE, "'config' needs 'check' or 'help'");
	if (strcmp(argv[first], "help") == 0) {
		config_help(stdout);
		return 0;
	}
	if (strcmp(argv[first], "check") != 0)
		return err_set(e, ERR_USAGE, "unknown 'config' action '%s'",
			       argv[first]);
	rc = cli_load_config(ctx, e);
	if (rc)
		return rc;
	rc = config_print(ctx->cfg, stdout, ctx->json, e);
	if (rc == 0 && !ctx->json)
		fprintf(stderr, "config '%s' is valid\n", ctx->cfg->path);
	return rc;
}
