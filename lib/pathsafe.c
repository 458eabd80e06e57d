/*
 * pathsafe.c - safe single path components from hostile strings.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h2k.h"
#include "pathsafe.h"

/* Path separators, and what must not reach a terminal (h2k.h). */
static int
bad_cp(unsigned cp)
{
	return cp == '/' || cp == '\\' || h2k_cp_unsafe(cp);
}

static int
ends_with(const char *s, size_t n, const char *suf)
{
	size_t l = strlen(suf);
	/* without regard to ASCII case, as h2k_pathset_claim compares */
	return n >= l && strncasecmp(s + n - l, suf, l) == 0;
}

/* Largest k <= n such that s[0..k) ends on a UTF-8 sequence boundary. */
static size_t
utf8_cut(const char *s, size_t n)
{
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/*
 * Where the extension of s starts: a last '.' followed by 1 to 15 ASCII
 * letters or digits, with something before it; else NULL.  "disk.vmdk" has
 * ".vmdk"; "a.._tmp_x" has none (a dot inside a flattened path is not one).
 */
static const char *
ext_of(const char *s)
{
	const char *dot = strrchr(s, '.');
	size_t n;

	if (!dot || dot == s || dot[-1] == '.')
		return NULL;
	n = strlen(dot + 1);
	if (n < 1 || n > 15)
		return NULL;
	for (const char *p = dot + 1; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9')))
			return NULL;
	return dot;
}

char *
h2k_pathsafe(const char *s, const char *fallback)
{
	size_t len = s ? strlen(s) : 0;
	/* every input byte yields at most one output byte, plus '_' suffix */
	char *out = h2k_malloc(len + 2), *ext = NULL;
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len;) {
		unsigned cp;
		size_t n = h2k_utf8_seq((const unsigned char *)s + i, len - i, &cp);
		if (n == 0 || bad_cp(cp)) {
			out[o++] = '_';
			i += n ? n : 1;
			continue;
		}
		memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	out[o] = '\0';
	for (size_t i = 0; i < o && out[i] == '.'; i++)
		out[i] = '_';
	if (o > 0 && out[0] == '-')
		out[0] = '_';
	if (o > H2K_PATHSAFE_MAX) {
		/* keep an extension of up to 16 bytes: "disk-0.vmdk" stays .vmdk */
		const char *dot = ext_of(out);
		size_t el = dot ? o - (size_t)(dot - out) : 0;
		if (dot) {
			ext = h2k_strdup(dot);
			if (!ext) {
				free(out);
				return NULL;
			}
		} else
			el = 0;
		size_t keep = utf8_cut(out, H2K_PATHSAFE_MAX - el);
		memcpy(out + keep, ext ? ext : "", el + 1);
		o = keep + el;
		free(ext);
	}
	if (o == 0) {
		free(out);
		return h2k_pathsafe(fallback && *fallback ? fallback : "unnamed", NULL);
	}
	if (ends_with(out, o, ".part") || ends_with(out, o, ".meta")) {
		/* At the length limit, spoil the suffix in place instead. */
		if (o >= H2K_PATHSAFE_MAX) {
			out[o - 1] = '_';
		} else {
			out[o++] = '_';
			out[o] = '\0';
		}
	}
	return out;
}

static int
in_set(const struct h2k_pathset *set, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcasecmp(set->names[i], name) == 0)
			return 1;
	return 0;
}

char *
h2k_pathset_claim(struct h2k_pathset *set, const char *safe)
{
	char *name = h2k_strdup(safe);

	if (!name)
		return NULL;
	if (in_set(set, name)) {
		/* "stem-N.ext": the suffix goes before a short extension */
		const char *dot = ext_of(safe);
		size_t stem = dot ? (size_t)(dot - safe) : strlen(safe);
		for (unsigned k = 2; in_set(set, name); k++) {
			free(name);
			name = h2k_asprintf("%.*s-%u%s", (int)stem, safe, k,
			    safe + stem);
			if (!name)
				return NULL;
		}
	}
	if (set->n == set->cap) {
		size_t nc = set->cap ? set->cap * 2 : 8;
		char **nn = h2k_realloc(set->names, nc * sizeof *nn);
		if (!nn) {
			free(name);
			return NULL;
		}
		set->names = nn;
		set->cap = nc;
	}
	set->names[set->n] = h2k_strdup(name);
	if (!set->names[set->n]) {
		free(name);
		return NULL;
	}
	set->n++;
	return name;
}

void
h2k_pathset_free(struct h2k_pathset *set)
{
	for (size_t i = 0; i < set->n; i++)
		free(set->names[i]);
	free(set->names);
	memset(set, 0, sizeof *set);
}

/* Here, not in ovf.c: h2k-fetch names folders and reserves NAME.ovf by it
 * and must not link the OVF/OVA code (libarchive) for that. */
char *
h2k_ovf_safe_name(const char *name)
{
	char *s = h2k_pathsafe(name, "vm");
	size_t n;

	if (!s)
		return NULL;
	/* ustar holds 100 bytes of name: leave room for ".ovf", ".mf". */
	n = strlen(s);
	if (n > 80) {
		n = 80;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--; /* do not cut a UTF-8 character in half */
		s[n] = '\0';
	}
	return s;
}
