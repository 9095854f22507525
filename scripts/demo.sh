#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the demo.
#
# The demo: a county hub and three stations in a temporary folder, all on this
# machine and talking over the network (ZeroMQ + CurveZMQ on 127.0.0.1).
#  - The hub (县法律援助中心) publishes the lawyer roster, a notice and the
#    year's targets, and serves sync and its status page.
#  - Two township stations and a village service point enrol over the network
#    with one-time invites, and record applications, assignments,
#    consultations, 12348 hotline tickets and return visits.
#  - 白沙镇 works offline for a while and catches up later.
#  - The hub and 城关镇 edit one case while apart: a conflict, shown to admins.
# The hub keeps running at the end; the script prints the status page's URL
# and how to stop it. Set AIDSYNC_DEMO_STOP=1 to stop it instead (tests, CI).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null

aidsync="$PWD/build/aidsync"
work=$(mktemp -d /tmp/aidsync-demo.XXXXXX)
year=$(date +%Y)
hub=(--data "$work/hub")
say() { printf '\n== %s\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
hub_pid=""
cleanup() {
  local rc=$?
  # On failure, or when asked to, the hub stops and the folder goes.
  if [ $rc -ne 0 ] || [ "${AIDSYNC_DEMO_STOP:-0}" = 1 ]; then
    [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
    [ -n "$hub_pid" ] && wait "$hub_pid" 2>/dev/null || true
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT

say "county authority and hub (县法律援助中心)"
authority=$("$aidsync" authority init --out "$work/authority.key")
"$aidsync" init "${hub[@]}" --name 县法律援助中心 --code 0500 --scope 430123 \
  --authority "$authority" --hub --authority-key "$work/authority.key" >/dev/null
echo "authority $authority"

say "the hub publishes the roster, a notice and this year's targets"
wang=$("$aidsync" put "${hub[@]}" lawyers new name=王建国 firm=正义律师事务所 kind=lawyer practice_years=8 \
  phone=13800000001 active=1)
li=$("$aidsync" put "${hub[@]}" lawyers new name=李娜 firm=湘江律师事务所 kind=lawyer practice_years=5 \
  phone=13800000002 active=1)
"$aidsync" put "${hub[@]}" lawyers new name=李晓 firm=正义律师事务所 kind=intern practice_years=1 active=1 >/dev/null
"$aidsync" put "${hub[@]}" notices new title="关于做好${year}年法律援助工作的通知" \
  body="审批有依据，不批准也有依据；指派通知书必须编号并留存根；回访不得收取任何费用。" \
  issued_at="${year}-01-07" >/dev/null
for t in "0512 cases 180" "0512 consultations 600" "0612 cases 120" "0500 lottery_cases 40"; do
  set -- $t
  "$aidsync" put "${hub[@]}" targets new year="$year" station_code="$1" metric="$2" value="$3" >/dev/null
done
"$aidsync" list "${hub[@]}" lawyers | cut -f3-6 | sed 's/^/  /'

say "the hub serves sync and its status page"
sync_port=$(free_port)
http_port=$(free_port)
"$aidsync" serve "${hub[@]}" --listen "tcp://127.0.0.1:$sync_port" --http "127.0.0.1:$http_port" \
  >"$work/hub.log" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/hub.log" && break; sleep 0.1; done
grep "listening on\|status page" "$work/hub.log" | sed 's/^/  /'

say "three stations enrol over the network with one-time invites"
enrol() {  # DIR NAME CODE SCOPE
  local token
  token=$("$aidsync" invite "${hub[@]}" --name "$2" --code "$3" --scope "$4" \
    --address "tcp://127.0.0.1:$sync_port")
  printf '  %s (%s, %s): token %s…\n' "$2" "$3" "$4" "${token:0:40}"
  "$aidsync" join --data "$work/$1" "$token" >/dev/null
}
enrol chengguan 城关镇工作站 0512 430123/05
enrol baisha 白沙镇工作站 0612 430123/06
enrol xinhua 城关镇新华村服务点 051201 430123/05/017
cg=(--data "$work/chengguan")
bs=(--data "$work/baisha")
xh=(--data "$work/xinhua")
hub_peer=(--peer "tcp://127.0.0.1:$sync_port")
for s in cg bs xh; do
  declare -n node=$s
  "$aidsync" sync "${node[@]}" "${hub_peer[@]}" >/dev/null  # the roster and notices come down
done

say "城关镇工作站: an application, its approval and assignment, a consultation, a hotline ticket, return visits"
app=$("$aidsync" put "${cg[@]}" applications new applicant_name=刘秀英 id_number=430123198203154422 \
  phone=13900000002 address=城关镇新华村3组 category=civil matter=追索劳动报酬 income_status=low_income \
  received_at="${year}-04-02" status=approved decision_basis="《法律援助条例》第十条" decided_at="${year}-04-03")
case_id=$("$aidsync" put "${cg[@]}" cases new application_id="$app" category=civil status=assigned \
  lawyer_id="$wang" assigned_at="${year}-04-03" funding=regular)
"$aidsync" get "${cg[@]}" cases "$case_id" --json | python3 -c \
  'import json,sys; print("  notice number:", json.load(sys.stdin)["notice_number"])'
"$aidsync" put "${cg[@]}" consultations new channel=walk_in topic=婚姻家庭 \
  summary=咨询离婚财产分割及子女抚养问题 consulted_at="${year}-04-05" >/dev/null
"$aidsync" put "${cg[@]}" hotline_tickets new caller=周先生 phone=13700000003 topic=工伤认定 \
  summary=12348热线来电咨询工伤认定程序 received_at="${year}-04-06" status=answered >/dev/null
"$aidsync" put "${cg[@]}" return_visits new case_id="$case_id" visited_at="${year}-05-20" satisfaction=5 \
  fee_charged=0 note=当事人对援助律师很满意 >/dev/null
# A second visit records a fee: the no-fee rule raises an alert at the hub.
"$aidsync" put "${cg[@]}" return_visits new case_id="$case_id" visited_at="${year}-06-02" satisfaction=3 \
  fee_charged=1 note=当事人反映律师收取交通费200元 >/dev/null
"$aidsync" sync "${cg[@]}" "${hub_peer[@]}" | sed 's/^/  sync: /'

say "新华村服务点: a 12348 consultation and a hotline ticket"
"$aidsync" put "${xh[@]}" consultations new channel=hotline_12348 topic=土地承包 \
  summary=村民咨询土地承包经营权纠纷 consulted_at="${year}-04-08" >/dev/null
"$aidsync" put "${xh[@]}" hotline_tickets new caller=赵女士 phone=13500000005 topic=赡养纠纷 \
  summary=老人咨询子女拒绝赡养如何维权 received_at="${year}-04-09" status=answered >/dev/null
"$aidsync" sync "${xh[@]}" "${hub_peer[@]}" | sed 's/^/  sync: /'

say "白沙镇工作站 works offline: a criminal case assigned to a senior lawyer, funded by the lottery fund"
app2=$("$aidsync" put "${bs[@]}" applications new applicant_name=陈建军 id_number=430123199001016631 \
  phone=13600000004 address=白沙镇白沙村 category=criminal matter=故意伤害案辩护 income_status=subsistence \
  received_at="${year}-04-10" status=approved decision_basis="刑事诉讼法第三十五条" decided_at="${year}-04-10")
"$aidsync" put "${bs[@]}" cases new application_id="$app2" category=criminal status=in_progress \
  lawyer_id="$li" assigned_at="${year}-04-11" funding=lottery >/dev/null
"$aidsync" put "${bs[@]}" consultations new channel=phone topic=劳动争议 \
  summary=农民工讨要工资，转法律援助申请 consulted_at="${year}-04-12" >/dev/null
echo "  (not synced yet: the hub does not have these)"

say "a concurrent edit: the hub and 城关镇 both change the case's outcome while apart"
"$aidsync" put "${hub[@]}" cases "$case_id" outcome=调解结案 >/dev/null
"$aidsync" put "${cg[@]}" cases "$case_id" outcome=判决胜诉 >/dev/null
"$aidsync" sync "${cg[@]}" "${hub_peer[@]}" >/dev/null
echo "the hub's conflict inbox:"
"$aidsync" conflicts "${hub[@]}" | sed 's/^/  /'

say "白沙镇 comes back online and catches up"
"$aidsync" sync "${bs[@]}" "${hub_peer[@]}" | sed 's/^/  sync: /'

say "the hub's figures for $year"
"$aidsync" report "${hub[@]}" --year "$year" | sed 's/^/  /'

say "hub status"
"$aidsync" status "${hub[@]}" | sed 's/^/  /'

if [ "${AIDSYNC_DEMO_STOP:-0}" = 1 ]; then
  say "done (AIDSYNC_DEMO_STOP=1: the hub stops)"
else
  say "the hub keeps running"
  echo "  status page:  http://127.0.0.1:$http_port/"
  echo "  data:         $work"
  echo "  stop it with: kill $hub_pid && rm -rf $work"
fi
