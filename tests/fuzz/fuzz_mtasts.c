/*
 * libFuzzer target for common/mtasts (issue 17 item 2): the input is
 * parsed both as a TXT record and as a policy file; a parsed policy keeps
 * its bounds and every mx pattern is matched against the input's first
 * line; and as deliverd's worker-to-scheduler "P" line (the shared cache).
 * Seeds: tests/fuzz/corpus/mtasts/.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "deliverd_mtasts.h"
#include "mtasts.h"
#include "spool.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mtasts_policy p;
	char		     id[MTASTS_ID_MAX], err[128], host[64];
	size_t		     i, n;

	struct spool_mtasts_rec *r;
	char			*line, *dom;

	if (size > MTASTS_BODY_MAX)
		return 0;
	if ((line = malloc(size + 1)) != NULL &&
	    (r = malloc(sizeof(*r))) != NULL) {
		memcpy(line, data, size);
		line[size] = '\0';
		if (deliverd_mtasts_parse_line(line, &dom, r) == 0 &&
		    (strlen(r->mr_id) >= MTASTS_ID_MAX || dom[0] == '\0' ||
			r->mr_expires < 0))
			abort();
		free(r);
	}
	free(line);
	if (mtasts_txt_parse((const char *)data, size, id) == 0 &&
	    (strlen(id) == 0 || strlen(id) >= MTASTS_ID_MAX))
		abort();
	if (mtasts_policy_parse((const char *)data, size, &p, err,
		sizeof(err)) != 0)
		return 0;
	if (p.max_age > MTASTS_MAX_AGE_MAX || p.n_mx > MTASTS_MX_MAX ||
	    mtasts_mode_name(p.mode) == NULL)
		abort();
	for (i = 0; i < p.n_mx; i++)
		if (strlen(p.mx[i]) >= MTASTS_HOST_MAX)
			abort();
	n = size < sizeof(host) - 1 ? size : sizeof(host) - 1;
	memcpy(host, data, n);
	host[n] = '\0';
	host[strcspn(host, "\n")] = '\0';
	(void)mtasts_mx_match(&p, host);
	return 0;
}
