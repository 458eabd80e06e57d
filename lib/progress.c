/*
 * progress.c - terminal bars and JSON progress lines (see progress.h).
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "h2k.h"
#include "jsonl.h"
#include "progress.h"

struct slot {
	char *vm, *file;   /* as given: the JSON lines carry them exactly */
	char *label;       /* "vm/file" escaped for the terminal (h2k.h) */
	_Atomic int64_t done, total;
	_Atomic int64_t cap, pos;  /* disk capacity, disk position decoded (-1: none) */
	_Atomic int phase;
	_Atomic int restart;
	/* owned by the drawing thread (under p->mu) */
	double rate, last_t, last_json;
	int64_t last_done;
	double prate;      /* rate of the measure (position or bytes) */
	int64_t last_m;
};

struct h2k_progress {
	int fd;
	enum h2k_progress_mode mode;
	pthread_mutex_t mu;
	struct slot **slots;
	size_t n, cap;
	int drawn;          /* lines of bars on screen now */
	double last_draw;
	double t0;
};

static const char *const phase_name[] = {
	"queued", "download", "retry", "verify", "done", "failed",
};

const char *
h2k_human_bytes(double n, char *buf, size_t len)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	int i = 0;

	while (n >= 1024 && i < 5) {
		n /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%.0f %s", n, u[i]);
	else
		snprintf(buf, len, "%.1f %s", n, u[i]);
	return buf;
}

struct h2k_progress *
h2k_progress_new(int fd, enum h2k_progress_mode mode)
{
	struct h2k_progress *p = h2k_calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->fd = fd;
	p->mode = mode;
	p->t0 = h2k_monotime();
	pthread_mutex_init(&p->mu, NULL);
	return p;
}

static void
put(struct h2k_progress *p, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(p->fd, s, n);
		if (w <= 0)
			return;  /* stderr gone: progress is best effort */
		s += w;
		n -= (size_t)w;
	}
}

/* Move up over the bars and clear them (caller holds mu). */
static void
clear_bars(struct h2k_progress *p, struct h2k_buf *b)
{
	if (p->drawn > 0) {
		h2k_buf_printf(b, "\r\033[%dA\033[J", p->drawn);
		p->drawn = 0;
	}
}

void
h2k_progress_free(struct h2k_progress *p)
{
	struct h2k_buf b = {0};

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	clear_bars(p, &b);
	if (b.len)
		put(p, b.data, b.len);
	pthread_mutex_unlock(&p->mu);
	h2k_buf_free(&b);
	for (size_t i = 0; i < p->n; i++) {
		free(p->slots[i]->vm);
		free(p->slots[i]->file);
		free(p->slots[i]->label);
		free(p->slots[i]);
	}
	free(p->slots);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int
h2k_progress_add(struct h2k_progress *p, const char *vm, const char *file)
{
	struct slot *s;
	int id = -1;

	if (!p)
		return -1;
	pthread_mutex_lock(&p->mu);
	if (p->n == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 16;
		struct slot **ns = h2k_realloc(p->slots, nc * sizeof *ns);
		if (!ns)
			goto out;
		p->slots = ns;
		p->cap = nc;
	}
	if (!(s = h2k_calloc(1, sizeof *s)))
		goto out;
	s->vm = h2k_strdup(vm ? vm : "");
	s->file = h2k_strdup(file ? file : "");
	struct h2k_buf lb = {0};
	if (!s->vm || !s->file ||
	    h2k_buf_ttyesc(&lb, s->vm, strlen(s->vm), 0) < 0 ||
	    h2k_buf_append(&lb, "/", 1) < 0 ||
	    h2k_buf_ttyesc(&lb, s->file, strlen(s->file), 0) < 0) {
		h2k_buf_free(&lb);
		free(s->vm);
		free(s->file);
		free(s);
		goto out;
	}
	s->label = lb.data;
	atomic_store(&s->total, -1);
	atomic_store(&s->cap, -1);
	atomic_store(&s->pos, -1);
	s->last_t = h2k_monotime();
	p->slots[p->n] = s;
	id = (int)p->n++;
out:
	pthread_mutex_unlock(&p->mu);
	return id;
}

/*
 * Slots are only appended and never freed before h2k_progress_free, so a
 * worker may read p->slots[id] while another thread appends only if the
 * array does not move under it: take the lock to fetch the pointer.
 */
static struct slot *
get(struct h2k_progress *p, int id)
{
	struct slot *s = NULL;

	if (!p || id < 0)
		return NULL;
	pthread_mutex_lock(&p->mu);
	if ((size_t)id < p->n)
		s = p->slots[id];
	pthread_mutex_unlock(&p->mu);
	return s;
}

void
h2k_progress_set(struct h2k_progress *p, int id, int64_t done, int64_t total)
{
	struct slot *s = get(p, id);

	if (!s)
		return;
	atomic_store(&s->done, done);
	atomic_store(&s->total, total);
}

void
h2k_progress_capacity(struct h2k_progress *p, int id, int64_t cap)
{
	struct slot *s = get(p, id);

	if (s)
		atomic_store(&s->cap, cap > 0 ? cap : -1);
}

void
h2k_progress_pos(struct h2k_progress *p, int id, int64_t pos)
{
	struct slot *s = get(p, id);

	if (s)
		atomic_store(&s->pos, pos >= 0 ? pos : -1);
}

void
h2k_progress_restart(struct h2k_progress *p, int id)
{
	struct slot *s = get(p, id);

	/* a restarted stream is decoded again from its start */
	if (s) {
		atomic_store(&s->pos, -1);
		atomic_store(&s->restart, 1);
	}
}

/* a + b for counts >= 0, at most INT64_MAX: capacities come from the
 * line and the stream's header, each below 9e18, and two overflow. */
static int64_t
sat_add(int64_t a, int64_t b)
{
	if (a < 0)
		a = 0;
	if (b < 0)
		b = 0;
	return b > INT64_MAX - a ? INT64_MAX : a + b;
}

/* Honest total: unknown once passed. */
static int64_t
eff_total(int64_t done, int64_t total)
{
	return total >= 0 && done <= total ? total : -1;
}

/*
 * What percent and ETA are taken from: bytes over the stream's length
 * when it is known; else the disk position over the disk's capacity (a
 * stream of unknown length covers the disk from 0 to its capacity; the
 * decoder's position when it gives one, else the bytes, which for a
 * compressed stream run behind the disk and make the estimate
 * pessimistic).  *mt = -1: no estimate.
 */
static void
measure(struct slot *s, int64_t *m, int64_t *mt)
{
	int64_t done = atomic_load(&s->done), tot = atomic_load(&s->total);
	int64_t cap = atomic_load(&s->cap), pos = atomic_load(&s->pos);

	*m = done;
	*mt = eff_total(done, tot);
	if (*mt >= 0 || cap <= 0)
		return;
	*m = pos >= 0 ? pos : done;
	*mt = eff_total(*m, cap);
}

static void
update_rate(struct slot *s, double now)
{
	int64_t done = atomic_load(&s->done);
	double dt = now - s->last_t;

	int64_t m, mt;

	measure(s, &m, &mt);
	if (atomic_exchange(&s->restart, 0)) {
		s->rate = s->prate = 0;
		s->last_t = now;
		s->last_done = done;
		s->last_m = m;
		return;
	}
	if (dt < 0.2)
		return;
	double inst = done >= s->last_done ? (double)(done - s->last_done) / dt : 0;
	double pinst = m >= s->last_m ? (double)(m - s->last_m) / dt : 0;
	/* EWMA with a ~5 s time constant; the first sample sets it outright */
	double a = dt / 5.0;
	if (a > 1)
		a = 1;
	s->rate = s->rate == 0 ? inst : s->rate + a * (inst - s->rate);
	s->prate = s->prate == 0 ? pinst : s->prate + a * (pinst - s->prate);
	s->last_t = now;
	s->last_done = done;
	s->last_m = m;
}

static void
json_line(struct h2k_progress *p, struct slot *s, struct h2k_buf *b)
{
	int ph = atomic_load(&s->phase);
	int64_t done = atomic_load(&s->done);
	int64_t total = eff_total(done, atomic_load(&s->total));
	int64_t cap = atomic_load(&s->cap), m, mt;
	cJSON *o = cJSON_CreateObject();
	char *txt;

	if (!o)
		return;
	measure(s, &m, &mt);
	cJSON_AddStringToObject(o, "phase", phase_name[ph]);
	cJSON_AddStringToObject(o, "vm", s->vm);
	cJSON_AddStringToObject(o, "file", s->file);
	cJSON_AddNumberToObject(o, "bytes_done", (double)done);
	if (total >= 0)
		cJSON_AddNumberToObject(o, "bytes_total", (double)total);
	else
		cJSON_AddNullToObject(o, "bytes_total");
	if (cap > 0)
		cJSON_AddNumberToObject(o, "capacity_bytes", (double)cap);
	if (mt >= 0 || ph == H2K_PH_DONE) {
		double pct = mt > 0 ? 100.0 * (double)m / (double)mt : 100.0;
		/* 100 is reserved for "done": a full stream is not yet fsynced */
		if (ph != H2K_PH_DONE && pct > 99.9)
			pct = 99.9;
		if (ph == H2K_PH_DONE)
			pct = 100;
		cJSON_AddNumberToObject(o, "percent_complete", (double)(int64_t)(pct * 10) / 10);
	} else
		cJSON_AddNullToObject(o, "percent_complete");
	double rate = ph == H2K_PH_DOWNLOAD ? s->rate : 0;
	double prate = ph == H2K_PH_DOWNLOAD ? s->prate : 0;
	cJSON_AddNumberToObject(o, "rate_bps", (double)(int64_t)rate);
	if (mt >= 0 && prate > 0 && ph == H2K_PH_DOWNLOAD)
		cJSON_AddNumberToObject(o, "eta_s", (double)(int64_t)((double)(mt - m) / prate + 0.5));
	else if (ph == H2K_PH_DONE)
		cJSON_AddNumberToObject(o, "eta_s", 0);
	else
		cJSON_AddNullToObject(o, "eta_s");
	if ((txt = h2k_json_print(o))) {
		h2k_buf_printf(b, "%s\n", txt);
		free(txt);
	}
	cJSON_Delete(o);
}

static int
term_width(int fd)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

static void
fmt_eta(double secs, char *buf, size_t len)
{
	long s = (long)(secs + 0.5);

	if (s >= 100 * 3600)
		snprintf(buf, len, ">99h");
	else if (s >= 3600)
		snprintf(buf, len, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, len, "%ld:%02ld", s / 60, s % 60);
}

/*
 * One bar line, cut to width (labels are escaped names, h2k.h).  m of mt
 * is the measure (see measure()); est: it is the disk's capacity, not the
 * stream's length, and the bytes are shown beside it.
 */
static void
bar_line(struct h2k_buf *b, const char *label, int64_t done, int64_t m,
    int64_t et, int est, double rate, double prate, int phase, int width)
{
	char d[32], t[32], r[32], e[64] = "", line[512], tail[200];
	const char *ph = phase == H2K_PH_RETRY ? " (retrying)" :
	    phase == H2K_PH_VERIFY ? " (verifying)" : "";

	h2k_human_bytes((double)done, d, sizeof d);
	h2k_human_bytes(rate, r, sizeof r);
	if (et >= 0) {
		h2k_human_bytes((double)et, t, sizeof t);
		if (prate > 0 && phase == H2K_PH_DOWNLOAD) {
			char eta[48];
			fmt_eta((double)(et - m) / prate, eta, sizeof eta);
			snprintf(e, sizeof e, " ETA %s", eta);
		}
		double pct = et ? 100.0 * (double)m / (double)et : 100;
		if (pct > 99 && phase != H2K_PH_DONE)
			pct = 99;
		if (phase == H2K_PH_DONE)
			pct = 100;
		if (est)
			snprintf(tail, sizeof tail, " %3d%% %s (disk %s) %s/s%s%s", (int)pct,
			    d, t, r, e, ph);
		else
			snprintf(tail, sizeof tail, " %3d%% %s/%s %s/s%s%s", (int)pct, d, t,
			    r, e, ph);
	} else
		snprintf(tail, sizeof tail, "      %s %s/s%s", d, r, ph);
	int tl = (int)strlen(tail);
	int lw = width / 3;
	int bw = width - lw - tl - 4;
	if (bw < 5)
		bw = 5;
	char bar[256];
	int fill = et > 0 ? (int)((double)bw * (double)m / (double)et) : 0;
	if (fill > bw)
		fill = bw;
	for (int i = 0; i < bw && i < (int)sizeof bar - 1; i++)
		bar[i] = i < fill ? '#' : (et >= 0 ? '-' : ' ');
	bar[bw < (int)sizeof bar - 1 ? bw : (int)sizeof bar - 1] = '\0';
	int ll = (int)strlen(label);
	if (ll > lw) {
		/* cut on a character boundary: a stray continuation byte such
		 * as 0x9b is CSI to an 8-bit terminal */
		const char *from = label + ll - (lw - 3);
		while (((unsigned char)*from & 0xc0) == 0x80)
			from++;
		snprintf(line, sizeof line, "...%s", from);
	} else
		snprintf(line, sizeof line, "%s", label);
	h2k_buf_printf(b, "%-*s [%s]%s\033[K\n", lw, line, bar, tail);
}

static void
draw(struct h2k_progress *p, double now, int force_json)
{
	struct h2k_buf b = {0};

	if (p->mode == H2K_PROGRESS_JSON) {
		for (size_t i = 0; i < p->n; i++) {
			struct slot *s = p->slots[i];
			int ph = atomic_load(&s->phase);
			update_rate(s, now);
			if ((ph == H2K_PH_DOWNLOAD || ph == H2K_PH_VERIFY) &&
			    (force_json || now - s->last_json >= 1.0)) {
				json_line(p, s, &b);
				s->last_json = now;
			}
		}
	} else if (p->mode == H2K_PROGRESS_BAR) {
		int w = term_width(p->fd), lines = 0;
		int64_t tdone = 0, tm = 0, ttotal = 0;
		int tknown = 1, test = 0, active = 0, ndone = 0, nleft = 0;
		double trate = 0, tprate = 0;
		clear_bars(p, &b);
		for (size_t i = 0; i < p->n; i++) {
			struct slot *s = p->slots[i];
			int ph = atomic_load(&s->phase);
			int64_t done = atomic_load(&s->done), m, mt;
			int est = eff_total(done, atomic_load(&s->total)) < 0;
			update_rate(s, now);
			measure(s, &m, &mt);
			if (ph == H2K_PH_FAILED)
				continue;
			tdone = sat_add(tdone, done);
			tm = sat_add(tm, m);
			if (mt < 0)
				tknown = 0;
			else
				ttotal = sat_add(ttotal, mt);
			test |= est && mt >= 0;
			if (ph == H2K_PH_DONE) {
				ndone++;
				continue;
			}
			nleft++;
			if (ph == H2K_PH_QUEUED)
				continue;
			active++;
			trate += s->rate;
			tprate += s->prate;
			bar_line(&b, s->label, done, m, mt, est && mt >= 0, s->rate,
			    s->prate, ph, w);
			lines++;
		}
		if (p->n > 0) {
			char lbl[64];
			snprintf(lbl, sizeof lbl, "total (%d active)", active);
			/*
			 * The total is done when every file that did not fail
			 * is: drawn as a download it stopped at 99 % (100 is
			 * kept for "done") with all the bytes in.
			 */
			bar_line(&b, lbl, tdone, tm, tknown ? ttotal : -1, test, trate,
			    tprate, ndone && !nleft ? H2K_PH_DONE : H2K_PH_DOWNLOAD, w);
			lines++;
		}
		p->drawn = lines;
	}
	if (b.len)
		put(p, b.data, b.len);
	h2k_buf_free(&b);
	p->last_draw = now;
}

void
h2k_progress_tick(struct h2k_progress *p)
{
	double now;

	if (!p || p->mode == H2K_PROGRESS_NONE)
		return;
	now = h2k_monotime();
	pthread_mutex_lock(&p->mu);
	if (now - p->last_draw >= 0.1)
		draw(p, now, 0);
	pthread_mutex_unlock(&p->mu);
}

void
h2k_progress_phase(struct h2k_progress *p, int id, enum h2k_progress_phase ph)
{
	struct slot *s = get(p, id);
	struct h2k_buf b = {0};

	if (!s)
		return;
	pthread_mutex_lock(&p->mu);
	int old = atomic_exchange(&s->phase, (int)ph);
	if (ph == H2K_PH_DOWNLOAD && old != H2K_PH_DOWNLOAD)
		atomic_store(&s->restart, 1);
	if (p->mode == H2K_PROGRESS_JSON && old != (int)ph && ph != H2K_PH_QUEUED) {
		update_rate(s, h2k_monotime());
		json_line(p, s, &b);
		s->last_json = h2k_monotime();
	}
	pthread_mutex_unlock(&p->mu);
	if (b.len)
		put(p, b.data, b.len);
	h2k_buf_free(&b);
}

void
h2k_progress_msg(struct h2k_progress *p, const char *line)
{
	struct h2k_buf b = {0};

	if (!p) {
		(void)!write(STDERR_FILENO, line, strlen(line));
		return;
	}
	pthread_mutex_lock(&p->mu);
	clear_bars(p, &b);
	h2k_buf_printf(&b, "%s", line);
	put(p, b.data, b.len);
	p->last_draw = 0;  /* redraw at the next tick */
	pthread_mutex_unlock(&p->mu);
	h2k_buf_free(&b);
}
