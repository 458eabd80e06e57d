/* Unit tests for lib/lease.c. SPDX-License-Identifier: LGPL-3.0-or-later */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "h2k.h"
#include "lease.h"
#include "soap.h"
#include "tap.h"

/* The lease's state as read from an ObjectContent with these propSets. */
static int
state(const char *propsets, char **msg)
{
	char *s = h2k_asprintf("<objects xmlns:xsi=\"http://www.w3.org/2001/"
	    "XMLSchema-instance\"><obj type=\"HttpNfcLease\">lease-1</obj>%s"
	    "</objects>", propsets);
	xmlDocPtr d = s ? h2k_xml_parse(s, strlen(s), "test") : NULL;
	int st = d ? h2k_lease_state_of(xmlDocGetRootElement(d), "lease-1", msg) : -2;

	xmlFreeDoc(d);
	free(s);
	return st;
}

#define STATE(v) "<propSet><name>state</name><val>" v "</val></propSet>"
#define ERROR(v) "<propSet><name>error</name><val>" v "</val></propSet>"

static void
test_interval(void)
{
	/* a third of the timeout, at most 60 s, at least 1 s */
	ok(h2k_lease_keepalive_interval(300, 0) == 60, "300 s lease: every 60 s");
	ok(h2k_lease_keepalive_interval(120, 0) == 40, "120 s lease: every 40 s");
	ok(h2k_lease_keepalive_interval(3, 0) == 1, "3 s lease: every second");
	ok(h2k_lease_keepalive_interval(1.5, 0) == 1,
	    "never under 1 s, however short the timeout");
	ok(h2k_lease_keepalive_interval(100000, 0) == 60,
	    "a long timeout is still kept every minute");
	ok(h2k_lease_keepalive_interval(0, 0) == 60 &&
	    h2k_lease_keepalive_interval(-5, 0) == 60,
	    "unknown timeout: every 60 s");
	ok(h2k_lease_keepalive_interval(300, 5) == 5,
	    "an explicit period wins (--keepalive)");
	ok(h2k_lease_keepalive_interval(3, 90) == 90,
	    "even when longer than the lease's third");
	ok(h2k_lease_keepalive_interval(300, 0.2) == 1,
	    "an explicit period under 1 s is 1 s");
	ok(h2k_lease_keepalive_interval(300, NAN) == 60,
	    "NaN is no period");
}

static void
test_state(void)
{
	char *msg = (char *)"unset";

	is_int(state(STATE("initializing"), &msg), H2K_LEASE_INITIALIZING,
	    "initializing");
	ok(msg == NULL, "no message outside error");
	is_int(state(STATE("ready"), &msg), H2K_LEASE_READY, "ready");
	is_int(state(STATE("done"), &msg), H2K_LEASE_DONE, "done");
	is_int(state("", &msg), H2K_LEASE_GONE, "no state: gone");
	is_int(state(STATE("ready") ERROR(
	    "<localizedMessage>ignored</localizedMessage>"), &msg),
	    H2K_LEASE_READY, "an error beside ready is not read");
	ok(msg == NULL, "and gives no message");

	is_int(state(STATE("exploded"), &msg), -1, "unknown state refused");
	is_int(h2k_errcode(), H2K_EX_NET, "as a network error");
	ok(strstr(h2k_errmsg(), "lease-1") && strstr(h2k_errmsg(), "exploded"),
	    "naming the lease and the state (%s)", h2k_errmsg());
	char longst[200];
	memset(longst, 'x', sizeof longst - 1);
	longst[sizeof longst - 1] = '\0';
	char *ps = h2k_asprintf("<propSet><name>state</name><val>%s</val></propSet>",
	    longst);
	is_int(state(ps, &msg), -1, "a long unknown state");
	ok(strlen(h2k_errmsg()) < 120, "is cut in the message (%zu bytes)",
	    strlen(h2k_errmsg()));
	free(ps);

	is_int(state(STATE("error") ERROR(
	    "<localizedMessage>Operation timed out.</localizedMessage>"
	    "<fault xsi:type=\"SystemError\"><reason>r</reason></fault>"), &msg),
	    H2K_LEASE_ERROR, "error");
	is_str(msg, "Operation timed out.", "the server's localized message");
	free(msg);
	state(STATE("error") ERROR("<localizedMessage></localizedMessage>"
	    "<fault xsi:type=\"SystemError\"><reason>disk gone</reason></fault>"),
	    &msg);
	is_str(msg, "SystemError: disk gone", "else the fault's type and reason");
	free(msg);
	state(STATE("error") ERROR("<fault xsi:type=\"vim25:Timedout\">"
	    "<msg>slow</msg></fault>"), &msg);
	is_str(msg, "Timedout: slow", "type without its prefix, msg for a reason");
	free(msg);
	state(STATE("error") ERROR("<fault xsi:type=\"NotSupported\"/>"), &msg);
	is_str(msg, "NotSupported", "a bare type");
	free(msg);
	state(STATE("error") ERROR(""), &msg);
	is_str(msg, "lease in error (no message from the server)",
	    "an empty fault still says something");
	free(msg);
	state(STATE("error"), &msg);
	is_str(msg, "lease in error (no message from the server)",
	    "so does no fault at all");
	free(msg);
	is_int(state(STATE("error"), NULL), H2K_LEASE_ERROR,
	    "the message is optional");
}

int
main(void)
{
	test_interval();
	test_state();
	return tap_done();
}
