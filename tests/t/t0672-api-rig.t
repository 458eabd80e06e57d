#!/usr/bin/env bash
# h2k-job serve with a runner exporting from the rig: the curl examples
# and the Python integration example of hyper2kvm-providers' README run as
# written (only host, port and the output directory adapted); a vcenter
# block naming the runner's server is taken without its credentials, one
# naming another server is refused; result.ovf_path, files, total_size and
# duration filled for a completed job.
. "$(dirname "$0")/../lib.sh"
. "$TESTS_DIR/t/t06-standins.sh"
. "$TESTS_DIR/t/t067-api.sh"

sim_start -vm 1 -disk-size 256K -disk-fill random -power off -password h2k-Api-S3cret-9z
job_trap
export H2K_SPOOL="$TRASH/spool" OUT="$TRASH/export"

test_expect_success 'the README paths exist on the rig (/datacenter/vm/my-vm); log in' '
	govc_ object.rename /DC0 datacenter >/dev/null 2>&1 &&
	govc_ object.rename /datacenter/vm/DC0_H0_VM0 my-vm >/dev/null 2>&1 &&
	govc_ find / -type m >vms &&
	grep -x /datacenter/vm/my-vm vms &&
	h2k_login_sim
'

# Started here, not in a test body (a subshell): the later tests need $API.
api_start api.err || exit 1
start_runner run.err --workers 1
test_expect_success 'serve and a runner are up' '
	runner_ready &&
	curl -sS "$API/health" >h && jq_ok h ".status == \"healthy\""
'

# The README's block, with localhost:8080 -> the server's port and
# /tmp/export -> this test's directory.
readme_curl() {
	sed -e "s|http://localhost:8080|$API|g" -e "s|/tmp/export|$OUT|g" <<-\SH
	# Health check
	curl http://localhost:8080/health

	# Daemon status
	curl http://localhost:8080/status

	# Submit job
	curl -X POST http://localhost:8080/jobs/submit \
	  -H "Content-Type: application/json" \
	  -d '{
	    "name": "my-export",
	    "vm_path": "/datacenter/vm/my-vm",
	    "output_path": "/tmp/export"
	  }'

	# Query jobs
	curl -X POST http://localhost:8080/jobs/query \
	  -H "Content-Type: application/json" \
	  -d '{"all": true}'
	SH
}

test_expect_success 'the README curl examples, as written' '
	readme_curl >curl.sh &&
	test "$(grep -c "^curl" curl.sh)" = 4 &&
	bash -e curl.sh >out 2>curl.err &&
	test_line_count = 4 out &&
	sed -n 1p out >health && sed -n 2p out >status &&
	sed -n 3p out >submit && sed -n 4p out >query &&
	jq_ok health ".status == \"healthy\" and (.timestamp | test(\"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$\"))" &&
	jq_ok status "(.uptime | test(\"^[0-9.]+(ns|µs|ms|s)$|^[0-9]+m[0-9.]+s$\")) and .total_jobs == 0 and (.version | type) == \"string\"" &&
	jq_ok submit ".accepted == 1 and .rejected == 0 and (.job_ids | length) == 1 and .errors == []" &&
	id=$(jq -r ".job_ids[0]" submit) && echo "$id" >id1 &&
	jq_ok query ".total == 1 and .jobs[0].definition.id == \"$id\" and .jobs[0].definition.name == \"my-export\" and .jobs[0].definition.output_path == \"$OUT\"" &&
	h2k-job show "$id" >rec && jq_ok rec ".vm_path == \"/datacenter/vm/my-vm\""
'

test_expect_success 'the job completes: result with ovf_path, files, total_size, duration (ns)' '
	id=$(cat id1) &&
	h2k-job wait --timeout 60 "$id" >/dev/null &&
	curl -sS "$API/jobs/$id" >job &&
	jq_ok job ".status == \"completed\" and .result.success == true" &&
	ovf=$(jq -r .result.ovf_path job) && test -f "$ovf" &&
	test "$ovf" = "$OUT/my-vm/my-vm.ovf" &&
	jq_ok job "(.result.files | length) >= 1 and (.result.files | all(type == \"string\"))" &&
	jq_ok job ".result.total_size == 262144 and (.result.duration | type) == \"number\" and .result.duration == (.result.duration | floor)" &&
	jq_ok job ".progress.percent_complete == 100 and .progress.files_downloaded == .progress.total_files and .progress.total_bytes == 262144" &&
	jq_ok job "(.started_at | test(\"Z$\")) and (.completed_at | test(\"Z$\")) and (.updated_at | test(\"Z$\"))" &&
	curl -sS "$API/jobs/logs/$id" >log &&
	grep "attempt 1 by runner" log &&
	curl -sS "$API/jobs/progress/$id" >prog &&
	jq_ok prog ".phase == \"completed\" and .percent_complete == 100"
'

# The README's Python example, as written but for BASE_URL and /tmp/export.
readme_python() {
	sed -e "s|http://localhost:8080|$API|" -e "s|/tmp/export|$OUT/py|" <<-\PY
	import requests
	import time

	BASE_URL = "http://localhost:8080"

	# Submit job
	response = requests.post(f"{BASE_URL}/jobs/submit", json={
	    "name": "python-export",
	    "vm_path": "/datacenter/vm/my-vm",
	    "output_path": "/tmp/export",
	    "options": {
	        "parallel_downloads": 4,
	        "remove_cdrom": True
	    }
	})

	job_id = response.json()["job_ids"][0]
	print(f"Job submitted: {job_id}")

	# Poll for completion
	while True:
	    response = requests.post(f"{BASE_URL}/jobs/query",
	        json={"job_ids": [job_id]})

	    job = response.json()["jobs"][0]
	    status = job["status"]

	    if status == "completed":
	        print(f"✅ Export completed: {job['result']['ovf_path']}")
	        break
	    elif status == "failed":
	        print(f"Export failed: {job.get('error')}")
	        break

	    if job.get("progress"):
	        progress = job["progress"]
	        print(f"{progress['phase']}: {progress['percent_complete']:.1f}%")

	    time.sleep(5)
	PY
}

test_expect_success 'the README Python example (Debian python3-requests) prints the ovf_path' '
	python3 -c "import requests" &&
	readme_python >client.py &&
	timeout 120 python3 client.py >py.out 2>py.err &&
	head -1 py.out | grep "^Job submitted: " &&
	tail -1 py.out >last &&
	grep -x "✅ Export completed: $OUT/py/my-vm/my-vm.ovf" last &&
	test -f "$(sed "s/^✅ Export completed: //" last)" &&
	pid=$(sed -n "s/^Job submitted: //p" py.out) &&
	h2k-job show "$pid" >rec2 &&
	jq_ok rec2 ".options.parallel_downloads == 4 and .options.remove_cdrom == true"
'

test_expect_success 'a vcenter block naming the runner'"'"'s server: accepted, credentials dropped' '
	host=${SIM_URL#https://} && host=${host%%/*} &&
	cat >vc.json <<-EOF &&
	{"name":"vc","vm_path":"/datacenter/vm/my-vm","output_path":"$OUT/vc",
	 "vcenter":{"server":"$host","username":"administrator@vsphere.local",
	            "password":"Zz-Not-Stored-31415","insecure":true}}
	EOF
	hcurl POST /jobs/submit -d @vc.json >vc.out &&
	test "$(cat code)" = 200 &&
	jq_ok vc.out ".accepted == 1" &&
	vid=$(jq -r ".job_ids[0]" vc.out) &&
	curl -sS -X POST "$API/jobs/query" -d "{\"job_ids\":[\"$vid\"]}" >vq &&
	! grep -r "Zz-Not-Stored-31415\|administrator@vsphere" "$H2K_SPOOL" vq api.err &&
	h2k-job wait --timeout 60 "$vid" >/dev/null
'

test_expect_success 'a vcenter block naming another server: rejected, nothing queued' '
	before=$(ls "$H2K_SPOOL/new" "$H2K_SPOOL/cur" "$H2K_SPOOL/done" | wc -l) &&
	hcurl POST /jobs/submit -d "{\"vm_path\":\"/datacenter/vm/my-vm\",\"output_path\":\"$OUT/x\",\"vcenter\":{\"server\":\"https://vcenter.example.com/sdk\",\"username\":\"u\",\"password\":\"Pw-Other-27182\"}}" >other &&
	test "$(cat code)" = 200 &&
	jq_ok other ".accepted == 0 and .rejected == 1 and .job_ids == []" &&
	jq -r ".errors[0]" other >msg &&
	grep "vcenter.server .https://vcenter.example.com/sdk. is not the server the runner is logged in to (127.0.0.1:[0-9]*)" msg &&
	! grep -r "Pw-Other-27182" "$H2K_SPOOL" other api.err &&
	test "$(ls "$H2K_SPOOL/new" "$H2K_SPOOL/cur" "$H2K_SPOOL/done" | wc -l)" = "$before"
'

test_expect_success 'status counts the jobs' '
	curl -sS "$API/status" >st &&
	jq_ok st ".total_jobs == 3 and .completed_jobs == 3 and .running_jobs == 0 and .failed_jobs == 0"
'

kill $API_PID
wait $API_PID
echo $? >api.rc
test_expect_success 'serve stops on SIGTERM with status 0' '
	test "$(cat api.rc)" = 0 &&
	grep "stopping" api.err
'

test_done
