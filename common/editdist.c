/*
 * editdist: Levenshtein distance over one row of EDITDIST_MAX + 1 cells.
 */
#include "config.h"

#include <string.h>

#include "editdist.h"

size_t
editdist(const char *a, const char *b)
{
	size_t row[EDITDIST_MAX + 1], la = strlen(a), lb = strlen(b);
	size_t i, j, diag, up, best;

	if (strcmp(a, b) == 0)
		return 0;
	if (la > EDITDIST_MAX || lb > EDITDIST_MAX)
		return EDITDIST_MAX + 1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *
editdist_nearest(const char *w, const char *const *words, size_t n, size_t max)
{
	const char *best = NULL;
	size_t	    i, d, bestd = max + 1;

	for (i = 0; i < n; i++)
		if ((d = editdist(w, words[i])) < bestd && d < strlen(w)) {
			bestd = d;
			best = words[i];
		}
	return best;
}
