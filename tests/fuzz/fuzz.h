/*
 * fuzz.h: force-included (-include) into every tests/fuzz/fuzz_<p>.c, so a
 * target needs no boilerplate: it defines LLVMFuzzerTestOneInput() (and
 * optionally LLVMFuzzerInitialize()). The input buffer is exactly `size`
 * bytes, not NUL-terminated; the function must return 0 and must not keep
 * state between calls that changes its behaviour.
 */
#ifndef SG_FUZZ_H
#define SG_FUZZ_H

/* first, so the feature macros (_GNU_SOURCE) are set before any system header */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
