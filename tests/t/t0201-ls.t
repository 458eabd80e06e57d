#!/usr/bin/env bash
# h2k-ls against the rig: the listing equals govc's, every field is there,
# the filters select what govc selects, -t, and sessions that are gone.
. "$(dirname "$0")/../lib.sh"

# Two datacenters, one inside a folder (with nested VM folders), a resource
# pool, VMs on and off.
sim_start -dc 2 -folder 1 -power mixed -vm 2 -pool 1

# oracle [govc find filters...]: "path<TAB>moref<TAB>power_state" per VM, as
# govc sees it, sorted.  The power state comes from govc's own property
# filter, one query per state.
oracle() {
	local st
	for st in poweredOn poweredOff suspended; do
		govc_ find -l -I / -type m -runtime.powerState "$st" "$@" |
		awk -v st="$st" '{ id = $1; sub(/^[^ \t]+[ \t]+/, ""); print $0 "\t" id "\t" st }'
	done | LC_ALL=C sort
}
mine() {
	jq -r '[.path, .moref, .power_state] | @tsv' "$1" | LC_ALL=C sort
}

test_expect_success 'setup: log in; a template, a subfolder, a suspended VM' '
	h2k_login_sim &&
	govc_ vm.markastemplate /DC0/vm/DC0_H0_VM1 &&
	govc_ folder.create /DC0/vm/sub &&
	govc_ object.mv /DC0/vm/DC0_C0_RP1_VM1 /DC0/vm/sub &&
	govc_ vm.power -suspend /F0/DC1/vm/F0/DC1_H0_VM0 &&
	oracle >all.oracle && test_line_count = 8 all.oracle &&
	grep -q suspended all.oracle && grep -q /DC0/vm/sub/ all.oracle
'

test_expect_success 'every VM, with the path, moref and power state govc reports' '
	h2k-ls >all.json 2>err && test_line_count = 0 err &&
	mine all.json >all.mine && test_cmp all.oracle all.mine
'

test_expect_success 'every line has every field, in order, with the right types' '
	jq -c "keys_unsorted" all.json | sort -u >keys &&
	echo "[\"name\",\"path\",\"moref\",\"uuid\",\"instance_uuid\",\"power_state\",\"template\",\"guest_id\",\"guest_os\",\"num_cpu\",\"memory_mb\",\"firmware\",\"datacenter\",\"host\",\"datastores\",\"disks\",\"nics\"]" >keys.want &&
	test_cmp keys.want keys &&
	jq -e "(.num_cpu|type==\"number\") and (.memory_mb|type==\"number\") and (.template|type==\"boolean\")
	       and (.datastores|type==\"array\") and (.disks|length>=1) and (.nics|length>=1)
	       and (.disks[0]|keys_unsorted==[\"key\",\"label\",\"capacity_bytes\",\"file\",\"datastore\",\"thin\"])
	       and (.nics[0]|keys_unsorted==[\"key\",\"label\",\"mac\",\"network\"])" all.json >/dev/null
'

test_expect_success 'the fields of a VM equal what govc reads from the server' '
	vm=/F0/DC1/vm/F0/DC1_C0_RP1_VM0 &&
	govc_ vm.info -json "$vm" >info.json &&
	jq -r ".virtualMachines[0] | [.config.uuid, .config.instanceUuid, .config.guestId,
	       .config.guestFullName, .config.hardware.numCPU, .config.hardware.memoryMB,
	       .config.firmware] | @tsv" info.json >want &&
	jq -r "select(.path==\"$vm\") | [.uuid, .instance_uuid, .guest_id, .guest_os,
	       .num_cpu, .memory_mb, .firmware] | @tsv" all.json >got &&
	test_line_count = 1 got && test_cmp want got &&
	jq -r ".virtualMachines[0].config.hardware.device[] | select(.backing.fileName) |
	       select(.capacityInBytes) | [.key, .deviceInfo.label, .capacityInBytes, .backing.fileName,
	       (.backing.thinProvisioned // false)] | @tsv" info.json >want &&
	jq -r "select(.path==\"$vm\") | .disks[] | [.key, .label, .capacity_bytes, .file, .thin] | @tsv" \
		all.json >got &&
	test_cmp want got &&
	jq -r ".virtualMachines[0].config.hardware.device[] | select(.macAddress) |
	       [.key, .macAddress] | @tsv" info.json >want &&
	jq -r "select(.path==\"$vm\") | .nics[] | [.key, .mac] | @tsv" all.json >got &&
	test_cmp want got
'

test_expect_success 'names resolved: datacenter, host, datastores, network' '
	vm=/F0/DC1/vm/F0/DC1_C0_RP1_VM0 &&
	host=$(govc_ vm.info -json "$vm" | jq -r ".virtualMachines[0].runtime.host.value") &&
	hname=$(govc_ object.collect -s "HostSystem:$host" name) &&
	jq -r "select(.path==\"$vm\") | [.datacenter, .host, .datastores[0], .disks[0].datastore, (.nics[0].network|type)] | @tsv" \
		all.json >got &&
	printf "DC1\t%s\tLocalDS_0\tLocalDS_0\tstring\n" "$hname" >want &&
	test_cmp want got &&
	! grep -q "\"network\":null" all.json
'

test_expect_success '--name takes a glob on the VM name' '
	oracle -name "*_VM0" >want &&
	h2k-ls --name "*_VM0" >out && mine out >got &&
	test_line_count = 4 got && test_cmp want got
'

test_expect_success '--power on, off and suspended select what govc selects' '
	for p in on:poweredOn off:poweredOff suspended:suspended; do
		h2k-ls --power "${p%%:*}" >out && mine out >got &&
		grep -P "\t${p#*:}\$" all.oracle >want &&
		test_cmp want got || return 1
	done
'

test_expect_success 'templates: listed by default, alone with --templates, gone with --no-templates' '
	jq -r "select(.template) | .path" all.json >got && echo /DC0/vm/DC0_H0_VM1 >want &&
	test_cmp want got &&
	h2k-ls --templates >out && jq -r .path out >got && test_cmp want got &&
	h2k-ls --no-templates >out && test_line_count = 7 out &&
	! grep -q DC0_H0_VM1 out
'

test_expect_success 'a folder path lists what is under it, recursively' '
	h2k-ls /DC0/vm >out && mine out >got &&
	grep "^/DC0/vm/" all.oracle >want && test_line_count = 4 want && test_cmp want got &&
	h2k-ls /DC0/vm/sub/ >out && jq -r .path out >got &&
	echo /DC0/vm/sub/DC0_C0_RP1_VM1 >want && test_cmp want got &&
	h2k-ls /F0 >out && test_line_count = 4 out
'

test_expect_success 'a VM path lists that VM; without the leading slash too' '
	h2k-ls /F0/DC1/vm/F0/DC1_H0_VM1 >out && jq -r .moref out >got &&
	grep -F /F0/DC1/vm/F0/DC1_H0_VM1 all.oracle | cut -f2 >want && test_cmp want got &&
	h2k-ls F0/DC1/vm/F0/DC1_H0_VM1 >out2 && test_cmp out out2
'

test_expect_success 'globs on paths: * stays within one path component' '
	h2k-ls "/*/vm/*_VM1" >out && jq -r .path out | sort >got &&
	printf "%s\n" /DC0/vm/DC0_H0_VM1 >want && test_cmp want got &&
	h2k-ls "/*/*/vm/*/*" >out && test_line_count = 4 out &&
	h2k-ls "/DC?/vm/sub" "/F0/DC1/vm/F0/DC1_C0*" >out && test_line_count = 3 out
'

test_expect_success 'overlapping paths list a VM once; / lists everything' '
	h2k-ls /DC0/vm /DC0/vm/DC0_H0_VM0 DC0/vm/ >out && mine out >got &&
	grep "^/DC0/vm/" all.oracle >want && test_cmp want got &&
	h2k-ls / >out && test_line_count = 8 out
'

test_expect_success 'a path looked up on the server fetches only what is under it' '
	H2K_LOG_LEVEL=debug h2k-ls /F0/DC1/vm/F0/DC1_H0_VM1 >out 2>log &&
	test_line_count = 1 out &&
	grep -q "FindByInventoryPath: HTTP 200" log &&
	test "$(grep -c CreateContainerView log)" = 1 &&
	H2K_LOG_LEVEL=debug h2k-ls /F0 >out 2>log &&
	test_line_count = 4 out && test "$(grep -c CreateContainerView log)" = 2
'

test_expect_success 'filters combine: path, power and name' '
	h2k-ls --power on --name "*RP1*" /F0 >out && mine out >got &&
	grep -P "^/F0/.*RP1.*\tpoweredOn\$" all.oracle >want && test_cmp want got
'

test_expect_success 'a path that names nothing: exit 6, one line, the rest still listed' '
	expect_code 6 h2k-ls /DC0/vm/nope /DC0/vm/DC0_H0_VM0 >out 2>err &&
	test_one_line err && grep -F "h2k-ls: /DC0/vm/nope: no such VM or folder" err &&
	jq -r .path out >got && echo /DC0/vm/DC0_H0_VM0 >want && test_cmp want got
'

test_expect_success 'an empty folder is not an error' '
	govc_ folder.create /DC0/vm/empty &&
	h2k-ls /DC0/vm/empty >out 2>err && test_line_count = 0 out && test_line_count = 0 err
'

test_expect_success '-t prints a table: header and one row per VM' '
	h2k-ls -t >table &&
	head -n 1 table | grep -E "^Name +Power +CPU +Mem +Disks GiB +Path$" &&
	test_line_count = 9 table &&
	grep -E "^DC0_H0_VM0 +on +1 +32 MiB +10\.0 +/DC0/vm/DC0_H0_VM0$" table &&
	grep -E "^DC1_H0_VM0 +suspended .* /F0/DC1/vm/F0/DC1_H0_VM0$" table
'

test_expect_success '-s names the session file; H2K_SESSION too' '
	mv "$XDG_STATE_HOME/h2k/session.json" "$HOME/other.json" &&
	h2k-ls -s "$HOME/other.json" >out && test_line_count = 8 out &&
	H2K_SESSION="$HOME/other.json" h2k-ls --name DC0_H0_VM0 >out && test_line_count = 1 out &&
	mv "$HOME/other.json" "$XDG_STATE_HOME/h2k/session.json"
'

test_expect_success 'stdout closed early: no hang, no crash' '
	h2k-ls | head -n 1 >out && test_line_count = 1 out
'

test_expect_success 'a session the server does not know: exit 3, one line, tells to log in' '
	cp "$XDG_STATE_HOME/h2k/session.json" good.json &&
	jq -c ".cookie = \"00000000-dead-beef-0000-000000000000\"" good.json \
		>"$XDG_STATE_HOME/h2k/session.json" &&
	expect_code 3 h2k-ls >out 2>err &&
	test_one_line err && grep -F "session expired or not valid" err && grep -F h2k-login err &&
	test_line_count = 0 out &&
	cp good.json "$XDG_STATE_HOME/h2k/session.json"
'

test_expect_success 'no session file: exit 3' '
	expect_code 3 h2k-ls -s "$HOME/none.json" 2>err && test_one_line err
'

test_expect_success 'the default model: the same set as govc' '
	sim_stop && sim_start &&
	h2k_login_sim && oracle >want && test_line_count -ge 4 want &&
	h2k-ls >out && mine out >got && test_cmp want got
'

test_expect_success 'a standalone ESXi host (HostAgent): the same set as govc' '
	sim_stop && sim_start -esx -vm 3 &&
	h2k_login_sim && oracle >want && test_line_count = 3 want &&
	h2k-ls >out && mine out >got && test_cmp want got &&
	h2k-ls /ha-datacenter/vm/ha-host_VM1 >out && test_line_count = 1 out
'

# under valgrind a login and a listing take longer than a second; the
# rig reaps idle sessions every idle period, so one expires within two
if [ -n "${H2K_VALGRIND:-}" ]; then idle=8; else idle=1; fi
test_expect_success 'a session that timed out on the server: exit 3' '
	sim_stop && sim_start -vm 1 -session-timeout ${idle}s &&
	h2k_login_sim && h2k-ls >out && test_line_count = 2 out &&
	sleep $((2 * idle + 2)) &&
	expect_code 3 h2k-ls 2>err && test_one_line err && grep -F "session expired" err
'

test_done
