/* Unit tests for lib/progress.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "h2k.h"
#include "progress.h"
#include "tap.h"

static char out[1 << 16];

/* What the progress display wrote to the pipe since the last call. */
static const char *
drain(int fd)
{
	size_t n = 0;
	ssize_t r;

	while (n < sizeof out - 1 && (r = read(fd, out + n, sizeof out - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	return out;
}

/* A tick that draws: bars are redrawn at most every 100 ms. */
static const char *
tick(struct h2k_progress *p, int fd)
{
	h2k_sleep(0.12);
	h2k_progress_tick(p);
	return drain(fd);
}

/* The line of out that starts with label (bars start with their label). */
static const char *
line_of(const char *label, char *buf, size_t len)
{
	const char *s = out;

	while (s && *s) {
		const char *e = strchr(s, '\n');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		/* a redraw starts with "\r\e[NA\e[J" */
		const char *t = s;
		if (*t == '\r') {
			const char *j = strstr(t, "\033[J");
			if (j && j < s + n)
				t = j + 3;
		}
		if (!strncmp(t, label, strlen(label))) {
			/* without the trailing clear-to-end-of-line */
			const char *k = strstr(t, "\033[K");
			size_t m = k && k < s + n ? (size_t)(k - t) : n - (size_t)(t - s);
			snprintf(buf, len, "%.*s", (int)m, t);
			return buf;
		}
		s = e ? e + 1 : NULL;
	}
	buf[0] = '\0';
	return buf;
}

static void
test_bars(void)
{
	int pfd[2];
	char l[512];

	if (pipe(pfd) < 0 || fcntl(pfd[0], F_SETFL, O_NONBLOCK) < 0) {
		skip(12, "no pipe");
		return;
	}
	struct h2k_progress *p = h2k_progress_new(pfd[1], H2K_PROGRESS_BAR);
	int a = h2k_progress_add(p, "web1", "disk-0.vmdk");
	int b = h2k_progress_add(p, "web1", "disk-1.vmdk");
	ok(p && a == 0 && b == 1, "two slots");

	h2k_progress_set(p, a, 100 << 20, 100 << 20);
	h2k_progress_phase(p, a, H2K_PH_DONE);
	h2k_progress_set(p, b, 50 << 20, 100 << 20);
	h2k_progress_phase(p, b, H2K_PH_DOWNLOAD);
	tick(p, pfd[0]);
	ok(strstr(line_of("web1/disk-1.vmdk", l, sizeof l), " 50% 50.0 MiB/100.0 MiB"),
	    "file bar: percent and sizes (%s)", l);
	ok(!*line_of("web1/disk-0.vmdk", l, sizeof l), "a done file has no bar");
	ok(strstr(line_of("total (1 active)", l, sizeof l), " 75% 150.0 MiB/200.0 MiB"),
	    "total bar over both files (%s)", l);

	/* every byte in, not yet fsynced and renamed: not 100 */
	h2k_progress_set(p, b, 100 << 20, 100 << 20);
	h2k_progress_phase(p, b, H2K_PH_VERIFY);
	tick(p, pfd[0]);
	ok(strstr(line_of("web1/disk-1.vmdk", l, sizeof l), " 99% ") &&
	    strstr(l, "(verifying)"), "full but verifying: 99%% (%s)", l);
	ok(strstr(line_of("total (1 active)", l, sizeof l), " 99% "),
	    "total stays under 100 while a file is unfinished (%s)", l);

	/* the demo's bug: every file done, the total stopped at 99 % */
	h2k_progress_phase(p, b, H2K_PH_DONE);
	tick(p, pfd[0]);
	ok(strstr(line_of("total (0 active)", l, sizeof l), " 100% 200.0 MiB/200.0 MiB"),
	    "every file done: the total reads 100%% (%s)", l);

	/* a failed file leaves the total; the others decide */
	int c = h2k_progress_add(p, "web2", "disk-0.vmdk");
	h2k_progress_set(p, c, 1 << 20, 100 << 20);
	h2k_progress_phase(p, c, H2K_PH_FAILED);
	tick(p, pfd[0]);
	ok(strstr(line_of("total (0 active)", l, sizeof l), " 100% 200.0 MiB/200.0 MiB"),
	    "a failed file is left out of the total (%s)", l);

	/* a queued file keeps the total open */
	int d = h2k_progress_add(p, "web3", "disk-0.vmdk");
	h2k_progress_set(p, d, 0, 100 << 20);
	tick(p, pfd[0]);
	ok(strstr(line_of("total (0 active)", l, sizeof l), " 66% 200.0 MiB/300.0 MiB"),
	    "a queued file counts in the total (%s)", l);

	/* honesty: past its announced size, the total is unknown */
	h2k_progress_set(p, d, 200 << 20, 100 << 20);
	h2k_progress_phase(p, d, H2K_PH_DOWNLOAD);
	tick(p, pfd[0]);
	ok(*line_of("web3/disk-0.vmdk", l, sizeof l) && !strchr(l, '%'),
	    "bytes past the total: no percent (%s)", l);

	/* a message clears the bars first: cursor up over the lines drawn */
	h2k_progress_msg(p, "h2k-fetch: hello\n");
	drain(pfd[0]);
	ok(!strncmp(out, "\r\033[2A\033[J", 8) && strstr(out, "h2k-fetch: hello\n"),
	    "a message clears the two bars, then is written");

	/* labels are escaped for the terminal */
	int e = h2k_progress_add(p, "a\033[2Jb", "x");
	h2k_progress_set(p, e, 1, 10);
	h2k_progress_phase(p, e, H2K_PH_DOWNLOAD);
	tick(p, pfd[0]);
	ok(!strstr(out, "a\033[2Jb") && strstr(out, "a\\e[2Jb/x"),
	    "a VM name's escape sequence is shown, not run");
	h2k_progress_free(p);
	close(pfd[0]);
	close(pfd[1]);
}

static cJSON *
last_json(void)
{
	char *s = out, *last = NULL;

	for (char *e; (e = strchr(s, '\n')); s = e + 1) {
		*e = '\0';
		last = s;
	}
	return last ? cJSON_Parse(last) : NULL;
}

static double
num(cJSON *o, const char *k)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : cJSON_IsNull(v) ? -1 : -2;
}

static void
test_json(void)
{
	int pfd[2];
	cJSON *o;

	if (pipe(pfd) < 0 || fcntl(pfd[0], F_SETFL, O_NONBLOCK) < 0) {
		skip(7, "no pipe");
		return;
	}
	struct h2k_progress *p = h2k_progress_new(pfd[1], H2K_PROGRESS_JSON);
	int a = h2k_progress_add(p, "web1", "disk-0.vmdk");

	h2k_progress_set(p, a, 1000, 1000);
	h2k_progress_phase(p, a, H2K_PH_DOWNLOAD);
	drain(pfd[0]);
	o = last_json();
	ok(o && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o,
	    "phase")) ?: "", "download") && !strcmp(cJSON_GetStringValue(
	    cJSON_GetObjectItemCaseSensitive(o, "file")) ?: "", "disk-0.vmdk"),
	    "a phase change is a JSON line at once");
	ok(num(o, "percent_complete") == 99.9 && num(o, "bytes_total") == 1000,
	    "all bytes in while downloading: 99.9, not 100 (%g)",
	    num(o, "percent_complete"));
	cJSON_Delete(o);

	h2k_progress_phase(p, a, H2K_PH_DONE);
	drain(pfd[0]);
	o = last_json();
	ok(o && num(o, "percent_complete") == 100 && num(o, "eta_s") == 0 &&
	    num(o, "rate_bps") == 0, "done: 100, eta 0, rate 0");
	cJSON_Delete(o);

	int b = h2k_progress_add(p, "web1", "nvram");
	h2k_progress_set(p, b, 10, -1);
	h2k_progress_phase(p, b, H2K_PH_DOWNLOAD);
	drain(pfd[0]);
	o = last_json();
	ok(o && num(o, "bytes_total") == -1 && num(o, "percent_complete") == -1 &&
	    num(o, "eta_s") == -1 && num(o, "bytes_done") == 10,
	    "unknown total: bytes_total, percent and eta null");
	cJSON_Delete(o);

	h2k_progress_set(p, b, 2000, 1000);
	h2k_progress_phase(p, b, H2K_PH_VERIFY);
	drain(pfd[0]);
	o = last_json();
	ok(o && num(o, "bytes_total") == -1 && num(o, "percent_complete") == -1,
	    "past the announced total: unknown, not over 100");
	cJSON_Delete(o);

	/* a stream of unknown length, measured against the disk's capacity */
	int s1 = h2k_progress_add(p, "web3", "disk-0.raw");
	h2k_progress_capacity(p, s1, 4000);
	h2k_progress_set(p, s1, 1000, -1);
	h2k_progress_phase(p, s1, H2K_PH_DOWNLOAD);
	drain(pfd[0]);
	o = last_json();
	ok(o && num(o, "bytes_total") == -1 && num(o, "capacity_bytes") == 4000 &&
	    num(o, "percent_complete") == 25, "no length: percent of the capacity (%g)",
	    num(o, "percent_complete"));
	cJSON_Delete(o);
	h2k_progress_pos(p, s1, 3000);
	h2k_progress_phase(p, s1, H2K_PH_RETRY);
	drain(pfd[0]);
	o = last_json();
	ok(o && num(o, "percent_complete") == 75 && num(o, "bytes_done") == 1000,
	    "a decoder's position goes before the bytes (%g)", num(o, "percent_complete"));
	cJSON_Delete(o);
	h2k_progress_restart(p, s1);
	h2k_progress_set(p, s1, 0, -1);
	h2k_progress_phase(p, s1, H2K_PH_DOWNLOAD);
	drain(pfd[0]);
	o = last_json();
	ok(o && num(o, "percent_complete") == 0, "a restart forgets the position");
	cJSON_Delete(o);
	h2k_progress_pos(p, s1, 5000);
	h2k_progress_phase(p, s1, H2K_PH_VERIFY);
	drain(pfd[0]);
	o = last_json();
	ok(o && num(o, "percent_complete") == -1 && num(o, "eta_s") == -1,
	    "past the capacity: no percent");
	cJSON_Delete(o);
	h2k_progress_set(p, s1, 900, 900);
	h2k_progress_pos(p, s1, 4000);
	h2k_progress_phase(p, s1, H2K_PH_DONE);
	drain(pfd[0]);
	o = last_json();
	ok(o && num(o, "percent_complete") == 100, "done: 100");
	cJSON_Delete(o);
	int s2 = h2k_progress_add(p, "web3", "disk-1.raw");
	h2k_progress_capacity(p, s2, 0);
	h2k_progress_set(p, s2, 10, -1);
	h2k_progress_phase(p, s2, H2K_PH_DOWNLOAD);
	drain(pfd[0]);
	o = last_json();
	ok(o && num(o, "capacity_bytes") == -2 && num(o, "percent_complete") == -1,
	    "a capacity of 0 is none");
	cJSON_Delete(o);

	/* the same phase again is no news */
	h2k_progress_phase(p, b, H2K_PH_VERIFY);
	ok(!*drain(pfd[0]), "no line when the phase does not change");
	/* a queued slot never writes a line */
	int c = h2k_progress_add(p, "web2", "x");
	h2k_progress_phase(p, c, H2K_PH_QUEUED);
	ok(c == 4 && !*drain(pfd[0]), "queued: no line");
	h2k_progress_free(p);
	close(pfd[0]);
	close(pfd[1]);
}

int
main(void)
{
	char b[32];

	is_str(h2k_human_bytes(0, b, sizeof b), "0 B", "0 B");
	is_str(h2k_human_bytes(1023, b, sizeof b), "1023 B", "bytes below 1 KiB");
	is_str(h2k_human_bytes(1536, b, sizeof b), "1.5 KiB", "KiB, one decimal");
	is_str(h2k_human_bytes(1.5 * 1024 * 1024 * 1024, b, sizeof b), "1.5 GiB",
	    "GiB");
	is_str(h2k_human_bytes(3.0 * 1024 * 1024 * 1024 * 1024 * 1024 * 1024, b,
	    sizeof b), "3072.0 PiB", "PiB is the largest unit");
	ok(h2k_progress_add(NULL, "a", "b") == -1, "no display: no slot");
	h2k_progress_set(NULL, 0, 1, 2);
	h2k_progress_tick(NULL);
	h2k_progress_free(NULL);
	ok(1, "NULL display: every call is a no-op");
	test_bars();
	test_json();
	return tap_done();
}
