/*
 * export.h - start an export: bring a VM into an exportable state, open an
 * HttpNfcLease on it (ExportVm, or ExportSnapshot of a temporary snapshot),
 * wait for the lease to be ready and read its device URLs.
 * SPDX-License-Identifier: LGPL-3.0-or-later
 */
#ifndef H2K_EXPORT_H
#define H2K_EXPORT_H

#include <signal.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "vim.h"

/* What to do with a VM that is powered on. */
enum h2k_power_mode {
	H2K_POWER_REFUSE,   /* H2K_EX_STATE naming the three options */
	H2K_POWER_SNAPSHOT, /* temporary snapshot + ExportSnapshot, VM keeps running */
	H2K_POWER_SHUTDOWN, /* ShutdownGuest, wait for poweredOff */
	H2K_POWER_OFF,      /* PowerOffVM_Task */
};

struct h2k_export_opts {
	int power;                     /* enum h2k_power_mode */
	double ready_timeout;          /* lease leaving "initializing"; 0: 300 s */
	double shutdown_timeout;       /* guest shutdown; 0: 300 s */
	double task_timeout;           /* snapshot and power tasks; 0: 900 s */
	volatile sig_atomic_t *cancel; /* non-zero: stop at the next step, clean up */
	const char *progname;          /* names the undoer in the abort reason; NULL: h2k-lease */
};

struct h2k_export_dev {
	char *key;            /* deviceUrl key, the OvfFile deviceId later */
	char *target_id;      /* file name the server suggests */
	char *url;            /* "*" host already replaced */
	char *ssl_thumbprint; /* SHA-1 of the NFC host's certificate, or NULL */
	int disk;
	long long size;       /* fileSize, -1 when the server gives none */
};

struct h2k_export {
	char *lease;          /* HttpNfcLease moref value */
	long timeout_s;       /* info.leaseTimeout */
	long long capacity;   /* info.totalDiskCapacityInKB in bytes, -1 unknown */
	char *snapshot;       /* temporary snapshot moref, or NULL */
	char *server;         /* SOAP URL of the session */
	char *power_action;   /* "shutdown", "power-off" or NULL: what was done */
	struct h2k_export_dev *dev;
	size_t ndev;
};

/*
 * Export vm (moref value); label names the VM in messages.  power_state is
 * the VM's current runtime.powerState (read fresh by the caller).  On
 * failure after a snapshot or lease was created, both are cleaned up here
 * (lease aborted, snapshot removed) before returning -1; a cancel gives
 * H2K_EX_CANCEL.
 */
int h2k_export_start(struct h2k_vim *v, const char *vm, const char *label,
    const char *power_state, const struct h2k_export_opts *o,
    struct h2k_export *e);
void h2k_export_free(struct h2k_export *e);

/* Undo a started export: abort the lease with why, remove the snapshot. */
void h2k_export_undo(struct h2k_vim *v, struct h2k_export *e, const char *why);

/*
 * h2k-lease's step for one VM: line holds what is known of it (h2k-ls
 * fields or h2k_export_vm_lookup's) and needs a string "moref".  Read its
 * power state afresh, start the export, add "lease" and "devices" (and
 * power_state poweredOff when it was powered off here) and write the line
 * to out (outname names it in messages).  Anything failing after the
 * start, a cancel seen before the write included, aborts the lease and
 * removes the snapshot before -1 (H2K_EX_CANCEL for a cancel); after the
 * write they belong to the stages downstream.
 */
int h2k_export_line(struct h2k_vim *v, cJSON *line,
    const struct h2k_export_opts *o, FILE *out, const char *outname);

/* JSON for the pipeline: {"lease":{...}} and [devices] as HACKING.md says. */
cJSON *h2k_export_lease_json(const struct h2k_export *e);
cJSON *h2k_export_devices_json(const struct h2k_export *e);

/*
 * The h2k-ls fields h2k-lease can fill for a VM named on the command line:
 * name, path, moref, uuid, instance_uuid, power_state, template, guest_id,
 * guest_os, num_cpu, memory_mb, firmware.  arg is an inventory path
 * ("/DC0/vm/x") or a moref value ("vm-54").  NULL + H2K_EX_NOTFOUND.
 */
cJSON *h2k_export_vm_lookup(struct h2k_vim *v, const char *arg);

/* Current runtime.powerState of vm, caller frees; NULL + error. */
char *h2k_export_power_state(struct h2k_vim *v, const char *vm);

/*
 * Read an HttpNfcLease's info (an ObjectContent with propSet "info") into
 * e: timeout_s and one dev per deviceUrl (key and url required, at most
 * 4096, fileSize only when a positive integer, "*" hosts replaced by host).
 * -1 with H2K_EX_NET for what a lease must not say; e keeps what was read
 * (h2k_export_free).  For read_info and the unit tests.
 */
int h2k_export_info_parse(xmlNodePtr obj, const char *host, struct h2k_export *e);

/*
 * Replace a "*" host in a device URL by the host the session talks to (as
 * the HttpNfcLeaseDeviceUrl documentation asks).  Returns a new string.
 */
char *h2k_export_fix_url(const char *url, const char *host);

#endif
