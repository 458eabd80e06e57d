/*
 * failmalloc.h - fail the k-th allocation, count what is still live.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef FAILMALLOC_H
#define FAILMALLOC_H

#include <stddef.h>

/*
 * Start a window: allocations are counted from 1; the fail_at-th one (and
 * only that one) returns NULL with errno ENOMEM; fail_at 0 fails none.
 * Every allocation made inside the window is tracked until freed.
 */
void fm_arm(long fail_at);
/* End the window; returns how many allocations it saw. */
long fm_disarm(void);
/* Did the window inject its failure? */
int fm_injected(void);
/*
 * Allocations made in the last window and not freed: count, and a
 * description of the first few ("#17 (24 bytes, from sweep)") into buf.
 * Blocks allocated from inside a shared object whose name starts with
 * exempt (NULL: none) are counted in *nexempt instead.
 */
long fm_leaks(char *buf, size_t bufsz, const char *exempt, long *nexempt);
/* Forget the tracked set (after a leak was reported). */
void fm_reset(void);
/* Print a backtrace on stderr when allocation number n is made. */
void fm_trace_at(long n);

#endif
