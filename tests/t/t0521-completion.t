#!/usr/bin/env bash
# Bash completion (completion/h2k): every option in each man page's
# SYNOPSIS is offered, in the context the SYNOPSIS gives it (h2k-job's
# after its command), with the fixed values the page lists (--power on |
# off | suspended); h2k-job completes its commands and the spool's job ids;
# h2k-export and h2k-ls complete VM paths from a cached h2k-ls.  Adding an
# option to a page without completing it fails here.
. "$(dirname "$0")/../lib.sh"

COMP=$SRC_DIR/completion/h2k

# complete WORD...: run the completion for the command line WORD... (the
# last word is the one being completed), one candidate per line on stdout.
complete_line() {
	bash --norc --noprofile -c '
		. "$1" || exit 1
		shift
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*" COMP_POINT=${#COMP_LINE}
		_h2k
		[ ${#COMPREPLY[@]} = 0 ] || printf "%s\n" "${COMPREPLY[@]}"
	' complete_line "$COMP" "$@"
}

# synopsis PAGE: "SUB OPTION VALUE..." per option of the page's SYNOPSIS,
# SUB being the .Cm command of its block ("-" for none).
synopsis() {
	sed -n '/^\.Sh SYNOPSIS/,/^\.Sh DESCRIPTION/p' "$1" | awk '
		/^\.Nm/ { sub_ = "-"; next }
		/^\.Cm / && NF == 2 && !seen_fl { sub_ = $2; next }
		{
			sub(/^\./, "", $1)
			for (i = 1; i <= NF; i++) {
				if ($i != "Fl") continue
				n = $(i + 1)
				if (n == "Fl") { opt = "--" $(i + 2); i += 2 }
				else if (n ~ /^-[a-z]/) { opt = "-" n; i++ }
				else if (n ~ /^[A-Za-z]+$/) {
					for (k = 1; k <= length(n); k++)
						print sub_, "-" substr(n, k, 1)
					i++; continue
				} else continue
				vals = ""
				for (j = i + 1; j <= NF && $j != "Fl"; j++)
					if ($j == "Cm") vals = vals " " $(j + 1)
				print sub_, opt vals
			}
		}'
}

test_expect_success 'the completion file is valid bash and registers every command' '
	bash --norc -c ". \"$COMP\" && complete -p" >reg &&
	for c in h2k-login h2k-ls h2k-lease h2k-fetch h2k-ovf h2k-job h2k-export; do
		grep -q "complete -F _h2k .*$c\\b" reg || { echo "$c not registered"; exit 1; }
	done
'

for page in "$SRC_DIR"/man/*.1; do
	c=$(basename "$page" .1)
	test_expect_success "$c: every SYNOPSIS option is offered" '
		synopsis "'"$page"'" >opts &&
		test_line_count -ge 3 opts &&
		while read -r sub opt vals; do
			if [ "$sub" = - ]; then
				complete_line '"$c"' - >got
			else
				complete_line '"$c"' "$sub" - >got
			fi
			grep -qxF -- "$opt" got || { echo "'"$c"' ${sub#-} : $opt not offered"; exit 1; }
			for v in $vals; do
				complete_line '"$c"' ${sub#-} "$opt" "" >vgot
				grep -qxF -- "$v" vgot || { echo "'"$c"' $opt: value $v not offered"; exit 1; }
			done
		done <opts
	'
done

test_expect_success 'a long option completes from its prefix, and --opt=value its value' '
	complete_line h2k-fetch --ret >got &&
	printf "%s\n" --retries --retry-delay >want &&
	test_cmp want got &&
	complete_line h2k-fetch --progress = j >got &&
	echo json >want &&
	test_cmp want got
'

test_expect_success 'h2k-job completes its commands' '
	complete_line h2k-job "" | sort >got &&
	printf "%s\n" cancel ls run serve show status submit wait >want &&
	test_cmp want got &&
	complete_line h2k-job --spool /x w >got &&
	echo wait >want &&
	test_cmp want got
'

cat >job.yaml <<'Y'
name: "vm-export-1"
vm_path: "/DC0/vm/vm1"
output_path: "/tmp/export"
Y

test_expect_success 'h2k-job show, cancel and wait complete the spool'"'"'s job ids' '
	h2k-job --spool "$TRASH/spool" submit job.yaml >sub &&
	sed -n "s/^{\"id\":\"\([^\"]*\)\".*/\1/p" sub >want &&
	test_line_count = 1 want &&
	for sub in show cancel wait; do
		complete_line h2k-job --spool "$TRASH/spool" $sub "" >got &&
		test_cmp want got || exit 1
	done &&
	complete_line h2k-job --spool "$TRASH/empty" show "" >got &&
	test ! -s got
'

# A stand-in h2k-ls: two VMs, one with a space in its path; counts its runs.
mkdir -p fakebin
cat >fakebin/h2k-ls <<'S'
#!/bin/sh
echo run >>"$HOME/ls-runs"
echo '{"name":"web01","path":"/DC0/vm/web01","moref":"vm-1"}'
echo '{"name":"db 1","path":"/DC0/vm/db 1","moref":"vm-2"}'
S
chmod +x fakebin/h2k-ls

test_expect_success 'h2k-export completes VM paths from a cached h2k-ls (0600)' '
	PATH=$TRASH/fakebin:$PATH complete_line h2k-export -o /srv /DC0/vm/w >got &&
	echo /DC0/vm/web01 >want &&
	test_cmp want got &&
	PATH=$TRASH/fakebin:$PATH complete_line h2k-export /DC0/vm/d >got &&
	printf "%s\n" "/DC0/vm/db\\ 1" >want &&
	test_cmp want got &&
	test_line_count = 1 "$HOME/ls-runs" &&
	cache=$(ls "$HOME"/.cache/h2k/vm-paths.*) &&
	test "$(file_mode "$cache")" = 600 &&
	test "$(file_mode "$HOME/.cache/h2k")" = 700
'

test_expect_success 'a stale cache is refreshed; another session file has its own' '
	cache=$(ls "$HOME"/.cache/h2k/vm-paths.*) &&
	touch -d "-1 hour" "$cache" &&
	PATH=$TRASH/fakebin:$PATH complete_line h2k-export /DC0/vm/w >got &&
	test_line_count = 2 "$HOME/ls-runs" &&
	PATH=$TRASH/fakebin:$PATH complete_line h2k-ls -s other.json /DC0/vm/w >got &&
	test_line_count = 3 "$HOME/ls-runs" &&
	ls "$HOME"/.cache/h2k/vm-paths.* >caches &&
	test_line_count = 2 caches
'

# VM names are anyone's with a vCenter account: a name must never run as
# code, expand a variable or a glob when TAB completes it.
mkdir -p hostbin
cat >hostbin/h2k-ls <<'S'
#!/bin/sh
printf '%s\n' '{"path":"/H/vm/$(touch pwned1)"}' '{"path":"/H/vm/`touch pwned2`"}' \
	'{"path":"/H/vm/${PATH}"}' '{"path":"/H/vm/*"}' '{"path":"/H/vm/a;b&c|d"}'
S
chmod +x hostbin/h2k-ls

test_expect_success 'hostile VM names in the cache are offered as text, never run' '
	rm -rf "$HOME/.cache/h2k" &&
	PATH=$TRASH/hostbin:$PATH complete_line h2k-export -s hostile.json /H/vm/ >got &&
	test ! -e pwned1 && test ! -e pwned2 &&
	cat >want <<-\W &&
	/H/vm/\$\(touch\ pwned1\)
	/H/vm/\`touch\ pwned2\`
	/H/vm/\$\{PATH\}
	/H/vm/\*
	/H/vm/a\;b\&c\|d
	W
	test_cmp want got &&
	PATH=$TRASH/hostbin:$PATH complete_line h2k-ls -s hostile.json "/H/vm/\$" >got &&
	test ! -e pwned1 &&
	test_line_count = 2 got
'

# An h2k-ls that ignores SIGTERM (a hung mount, a stuck TLS read in a
# signal-blind library) must not hang the shell: TAB returns.
mkdir -p hangbin
printf '#!/bin/sh\ntrap "" TERM\nsleep 60\n' >hangbin/h2k-ls
chmod +x hangbin/h2k-ls

test_expect_success 'TAB returns within seconds when h2k-ls ignores SIGTERM' '
	start=$(date +%s) &&
	PATH=$TRASH/hangbin:$PATH complete_line h2k-export -s hang.json /X >got &&
	end=$(date +%s) &&
	test ! -s got &&
	test $((end - start)) -lt 20
'

# A large inventory: one TAB over 10000 cached paths stays interactive
# (a subshell per path took some 17 s).
test_expect_success 'a 10000-VM cache completes in a few seconds' '
	key=$(printf "%s" big.json | cksum | cut -d" " -f1) &&
	mkdir -p "$HOME/.cache/h2k" &&
	seq -f "/BIG/vm/f/vm-%g" 1 10000 >"$HOME/.cache/h2k/vm-paths.$key" &&
	start=$(date +%s) &&
	PATH=$TRASH/hangbin:$PATH complete_line h2k-export -s big.json /BIG/ >got &&
	end=$(date +%s) &&
	test_line_count = 10000 got &&
	test $((end - start)) -lt 8
'

# File names are names: a[1].json is not a pattern (it matched a1.json,
# and under shopt -s failglob the whole completion failed).
test_expect_success 'file names with glob characters complete as themselves' '
	mkdir gl && (cd gl && : >"a[1].json" && : >"a*b.json" && : >a1.json) &&
	(cd gl && complete_line h2k-login -s "a[" >../got) &&
	echo "a[1].json" >want && test_cmp want got &&
	(cd gl && bash --norc --noprofile -c "
		shopt -s failglob; . \"\$1\" || exit 1
		COMP_WORDS=(h2k-login -s a); COMP_CWORD=2; _h2k
		printf \"%s\n\" \"\${COMPREPLY[@]}\"" x "$COMP" >../got 2>../err) &&
	test ! -s err &&
	sort got >got.s && printf "%s\n" "a*b.json" a1.json "a[1].json" | sort >want &&
	test_cmp want got.s
'

test_expect_success 'options taking files, directories or fixed words complete them' '
	mkdir -p d1 && : >f1.json &&
	complete_line h2k-login -s f1 >got && echo f1.json >want && test_cmp want got &&
	complete_line h2k-fetch -o d >got && echo d1 >want && test_cmp want got &&
	complete_line h2k-ls --power o >got && printf "%s\n" on off >want && test_cmp want got &&
	complete_line h2k-job ls --status c >got &&
	printf "%s\n" completed cancelled >want && test_cmp want got
'

test_done
