/*
 * progress.h - download progress on stderr: terminal bars or JSON lines.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 *
 * Workers publish bytes with h2k_progress_set() (atomics, no lock, cheap
 * enough for every write callback); one thread calls h2k_progress_tick()
 * about ten times a second and draws.  Bars: one line per active file and
 * a total line, redrawn in place (cursor up, clear line), at most every
 * 100 ms.  JSON: one object per active file per second and one at every
 * phase change:
 *   {"phase":"download","vm":"web1","file":"disk-0.vmdk","bytes_done":N,
 *    "bytes_total":N|null,"capacity_bytes":N,"percent_complete":F|null,
 *    "rate_bps":N,"eta_s":N|null}
 * Honesty rules: the total is what the caller says it is (Content-Length
 * when the server sent one, else the device size); once bytes_done passes
 * it, the total is treated as unknown.  Unknown total: percent and ETA
 * from the disk position (decoder's, else bytes) over the disk's capacity
 * (capacity_bytes, present when known) while the position is within it;
 * else no percent, no ETA (null in JSON, absent on the bar).  Percent is never above 100, and 100
 * only in phase "done".  The rate is an exponentially weighted average
 * over about five seconds, restarted at each (re)connect so a retry does
 * not inherit a stale rate.
 */
#ifndef H2K_PROGRESS_H
#define H2K_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

enum h2k_progress_mode {
	H2K_PROGRESS_NONE,
	H2K_PROGRESS_BAR,
	H2K_PROGRESS_JSON,
};

enum h2k_progress_phase {
	H2K_PH_QUEUED,
	H2K_PH_DOWNLOAD,
	H2K_PH_RETRY,   /* waiting before another attempt */
	H2K_PH_VERIFY,  /* rehashing a kept prefix, fsync, rename */
	H2K_PH_DONE,
	H2K_PH_FAILED,
};

struct h2k_progress;

/* fd: where to draw (stderr).  NULL on allocation failure. */
struct h2k_progress *h2k_progress_new(int fd, enum h2k_progress_mode mode);
/* Clears the bars and frees.  NULL is fine. */
void h2k_progress_free(struct h2k_progress *p);
/* A slot for one file; returns its id (>= 0) or -1. Thread-safe. */
int h2k_progress_add(struct h2k_progress *p, const char *vm, const char *file);
/* done bytes and total (-1: unknown). Lock-free. */
void h2k_progress_set(struct h2k_progress *p, int id, int64_t done, int64_t total);
/* A phase change; JSON mode emits a line at once. Thread-safe. */
void h2k_progress_phase(struct h2k_progress *p, int id, enum h2k_progress_phase ph);
/*
 * The disk's capacity (-1: unknown), and the disk position a decoder has
 * covered (-1: none; the bytes then stand for it).  With a stream of
 * unknown length, percent and ETA come from position over capacity.
 * Lock-free.
 */
void h2k_progress_capacity(struct h2k_progress *p, int id, int64_t cap);
void h2k_progress_pos(struct h2k_progress *p, int id, int64_t pos);
/* The rate restarts (new connection); the position is forgotten. */
void h2k_progress_restart(struct h2k_progress *p, int id);
/* Redraw if due (bars: 100 ms; JSON: 1 s). */
void h2k_progress_tick(struct h2k_progress *p);
/*
 * Print one line (a warning, an error) without tearing the bars: they are
 * cleared, the line written, and redrawn at the next tick.  Thread-safe.
 * The line is written as given: escape outside strings in it first
 * (h2k_ttystr).  Bar labels are escaped by h2k_progress_add itself.
 */
void h2k_progress_msg(struct h2k_progress *p, const char *line);

/* "1.5 GiB" into buf. */
const char *h2k_human_bytes(double n, char *buf, size_t len);

#endif
