/*
 * editdist: the Levenshtein distance between two short words (insertions,
 * deletions and substitutions of one byte each), for "did you mean"
 * suggestions. Pure; bounded by EDITDIST_MAX bytes per word.
 */
#ifndef SG_EDITDIST_H
#define SG_EDITDIST_H

#include <stddef.h>

#define EDITDIST_MAX 32

/* The distance, or EDITDIST_MAX + 1 when a word is longer than EDITDIST_MAX
 * (and the two differ): too far to suggest. */
size_t editdist(const char *a, const char *b);
/* The word of words[0..n) nearest to w, if at most max edits away and
 * closer than w's length (so "x" never suggests "queue"); else NULL. */
const char *editdist_nearest(const char *w, const char *const *words, size_t n,
    size_t max);

#endif
