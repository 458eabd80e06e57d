# tests/t/t06-standins.sh - stand-in pipeline commands for the h2k-job spool
# tests (sourced by t06xx).  They behave like the real h2k-lease, h2k-fetch
# and h2k-ovf where the runner can tell: JSON lines in and out, progress
# JSON on h2k-fetch's stderr, slow resumable copies written as NAME.part
# then renamed, the lease aborted on SIGTERM.  Their "server" is a
# directory: $STANDIN_SRC/VMNAME/*.vmdk are the disks; lease states live in
# $STANDIN_STATE/leases/.  Every completed export appends "complete ID" to
# $STANDIN_STATE/ledger under flock, every fetch start "fetch ID ATTEMPT
# OFFSET", so tests can count executions.
# Knobs (environment): STANDIN_CHUNK bytes per step, STANDIN_DELAY seconds
# per step, STANDIN_PAUSE=lease|ovf stops that stage on the first attempt
# of a job after touching $STANDIN_STATE/at-STAGE-ID, STANDIN_TERM_DELAY
# seconds h2k-fetch takes to abort on SIGTERM.
# SPDX-License-Identifier: LGPL-3.0-or-later

standins_install() { # DIR: replace h2k-lease/fetch/ovf in DIR with stand-ins
	local d=$1
	rm -f "$d/h2k-lease" "$d/h2k-fetch" "$d/h2k-ovf"
	cat >"$d/h2k-standin.py" <<'PY'
#!PYTHON -S
import hashlib, json, os, signal, sys, time, fcntl

state = os.environ["STANDIN_STATE"]
jid = os.environ.get("H2K_JOB_ID", "-")
attempt = os.environ.get("H2K_JOB_ATTEMPT", "1")
stage = os.path.basename(sys.argv[0])

def ledger(line):
    with open(os.path.join(state, "ledger"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line + "\n")
        f.flush()

def lease_state(moref, st):
    d = os.path.join(state, "leases")
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, moref + ".tmp")
    with open(tmp, "w") as f:
        f.write(st + "\n")
    os.rename(tmp, os.path.join(d, moref))

def pause(what):
    if os.environ.get("STANDIN_PAUSE") == what and attempt == "1":
        open(os.path.join(state, "at-%s-%s" % (what, jid)), "w").close()
        while True:
            time.sleep(1)

def args():
    a = sys.argv[1:]
    opts, pos = {}, []
    i = 0
    while i < len(a):
        if a[i] == "--":
            pos += a[i + 1:]
            break
        if a[i] in ("-s", "-o", "-j", "--progress"):
            opts[a[i]] = a[i + 1]
            i += 2
            continue
        if a[i].startswith("-"):
            opts[a[i]] = True
        else:
            pos.append(a[i])
        i += 1
    return opts, pos

opts, pos = args()
with open(os.path.join(state, "argv"), "a") as f:
    f.write(stage + " " + " ".join(sys.argv[1:]) + "\n")

if stage == "h2k-lease":
    src = os.environ["STANDIN_SRC"]
    for vm in pos:
        name = vm.rstrip("/").split("/")[-1]
        d = os.path.join(src, name)
        if not os.path.isdir(d):
            sys.stderr.write("h2k-lease: %s: no such VM\n" % vm)
            sys.exit(6)
        moref = "lease-%d-%s" % (os.getpid(), name)
        lease_state(moref, "ready")
        pause("lease")
        devs = []
        for i, fn in enumerate(sorted(os.listdir(d))):
            p = os.path.join(d, fn)
            devs.append({"key": "/vm/disk%d" % i, "target_id": fn, "disk": True,
                         "size": os.path.getsize(p), "url": "file://" + p})
        print(json.dumps({"name": name, "path": vm, "moref": "vm-" + name,
                          "lease": {"moref": moref, "timeout_s": 300, "mode": "export",
                                    "snapshot": None},
                          "devices": devs}), flush=True)
    sys.exit(0)

if stage == "h2k-fetch":
    cur = {"lease": None}
    def term(sig, frm):
        # STANDIN_TERM_DELAY: a slow abort, to show nobody takes over meanwhile
        time.sleep(float(os.environ.get("STANDIN_TERM_DELAY", "0")))
        if cur["lease"]:
            lease_state(cur["lease"], "aborted")
        sys.stderr.write("h2k-fetch: interrupted; lease aborted, .part kept\n")
        sys.exit(10)
    signal.signal(signal.SIGTERM, term)
    chunk = int(os.environ.get("STANDIN_CHUNK", "65536"))
    delay = float(os.environ.get("STANDIN_DELAY", "0"))
    out = opts["-o"]
    for line in sys.stdin:
        vm = json.loads(line)
        cur["lease"] = vm["lease"]["moref"]
        vdir = os.path.join(out, vm["name"])
        os.makedirs(vdir, exist_ok=True)
        files = []
        for dev in vm["devices"]:
            src = dev["url"][len("file://"):]
            dst = os.path.join(vdir, dev["target_id"])
            part = dst + ".part"
            off = os.path.getsize(part) if os.path.exists(part) else 0
            ledger("fetch %s %s %d" % (jid, attempt, off))
            size = dev["size"]
            with open(src, "rb") as s, open(part, "ab") as o:
                s.seek(off)
                done = off
                while True:
                    b = s.read(chunk)
                    if not b:
                        break
                    o.write(b)
                    o.flush()
                    done += len(b)
                    sys.stderr.write(json.dumps({"phase": "download", "vm": vm["name"],
                        "file": dev["target_id"], "bytes_done": done,
                        "bytes_total": size,
                        "percent_complete": 100.0 * done / size if size else 100}) + "\n")
                    sys.stderr.flush()
                    if delay:
                        time.sleep(delay)
                os.fsync(o.fileno())
            h = hashlib.sha256(open(part, "rb").read()).hexdigest()
            os.rename(part, dst)
            files.append({"key": dev["key"], "target_id": dev["target_id"],
                          "path": dst, "size": size, "sha256": h})
        vm["dir"] = vdir
        vm["files"] = files
        print(json.dumps(vm), flush=True)
    sys.exit(0)

if stage == "h2k-ovf":
    for line in sys.stdin:
        vm = json.loads(line)
        pause("ovf")
        ovf = os.path.join(vm["dir"], vm["name"] + ".ovf")
        with open(ovf + ".part", "w") as f:
            f.write("<Envelope/>\n")
        os.rename(ovf + ".part", ovf)
        lease_state(vm["lease"]["moref"], "completed")
        ledger("complete %s" % jid)
        vm["ovf_path"] = ovf
        vm["lease"]["state"] = "completed"
        print(json.dumps(vm), flush=True)
    sys.exit(0)
PY
	# -S: no site module; start-up time matters with 60 of them per test.
	sed -i "1s|PYTHON|$(command -v python3)|" "$d/h2k-standin.py"
	for s in h2k-lease h2k-fetch h2k-ovf; do
		ln -s h2k-standin.py "$d/$s"
	done
	chmod +x "$d/h2k-standin.py"
	export STANDIN_STATE="$TRASH/standin" STANDIN_SRC="$TRASH/src"
	mkdir -p "$STANDIN_STATE" "$STANDIN_SRC"
}

# standins_vm NAME BYTES...: a VM with one random disk per size.
standins_vm() {
	local name=$1 i=0
	shift
	mkdir -p "$STANDIN_SRC/$name"
	for sz in "$@"; do
		head -c "$sz" /dev/urandom >"$STANDIN_SRC/$name/disk-$i.vmdk"
		i=$((i + 1))
	done
}

# job_file NAME VM OUTDIR [options yaml...]: a single YAML job on stdout.
job_yaml() {
	printf 'name: %s\nvm_path: /DC0/vm/%s\noutput_path: %s\n' "$1" "$2" "$3"
}

# jget JSON EXPR: print the Python expression EXPR over the object j.
jget() {
	python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# field ID EXPR: EXPR over job ID's record (h2k-job show).
field() {
	jget "$(h2k-job show "$1")" "$2"
}

# wait_for TEST-ARGS... : poll `test ARGS` for up to $WAIT_S (20) seconds.
wait_for() {
	local i=0 n=$(( ${WAIT_S:-20} * 10 ))
	while ! test "$@"; do
		i=$((i + 1))
		if [ $i -gt $n ]; then
			echo "timed out waiting for: test $*" >&2
			return 1
		fi
		sleep 0.1
	done
}

# wait_gone PID: wait (up to 20 s) until PID has exited (for non-children).
wait_gone() {
	local i=0
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && { echo "pid $1 still alive" >&2; return 1; }
		sleep 0.1
	done
}

# group_gone PGID: no process is left in the process group.
group_gone() {
	local i=0
	while pgrep -g "$1" >/dev/null 2>&1; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "processes left in group $1:" >&2
			ps -o pid,pgid,args -g "$1" >&2
			return 1
		fi
		sleep 0.1
	done
}

# submit_vms VM...: one job per VM into $OUT, prints ids one per line.
submit_vms() {
	local f=$TRASH/.jobs.$$.yaml vm
	echo "jobs:" >"$f"
	for vm in "$@"; do
		printf '  - name: %s\n    vm_path: /DC0/vm/%s\n    output_path: %s\n' \
		    "$vm" "$vm" "$OUT" >>"$f"
	done
	h2k-job submit "$f" | python3 -c 'import json,sys
for l in sys.stdin: print(json.loads(l)["id"])'
}

# ledger_count WHAT ID: lines "WHAT ID..." in the stand-ins' ledger.
ledger_count() {
	if [ -f "$STANDIN_STATE/ledger" ]; then
		grep -c "^$1 $2\( \|\$\)" "$STANDIN_STATE/ledger"
	else
		echo 0
	fi
	return 0
}

# wait_field ID EXPR VALUE: poll job ID's record until EXPR prints VALUE.
wait_field() {
	local i=0 v
	while v=$(field "$1" "$2") && [ "$v" != "$3" ]; do
		i=$((i + 1))
		if [ $i -gt 100 ]; then
			echo "job $1: $2 is '$v', not '$3'" >&2
			return 1
		fi
		sleep 0.2
	done
}

# start_runner ERRFILE [run options...]: start `h2k-job run` in the
# background of the current shell; its pid goes to $RUNNER (and ERRFILE.pid).
start_runner() {
	local err=$1
	shift
	h2k-job run "$@" 2>"$err" &
	RUNNER=$!
	echo $RUNNER >"$err.pid"
}

# runner_up: wait until a runner registered itself in the spool.
runner_up() {
	wait_for -d "$H2K_SPOOL/run" &&
	wait_for -n "$(ls "$H2K_SPOOL/run" 2>/dev/null)"
}
