#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the demo.
#
# The demo: a county authority, the county hub and one township station in a
# temporary folder. The hub publishes the lawyer roster and a notice; the
# station, offline, records an application, an assignment, a consultation, a
# 12348 hotline ticket and a return visit; USB-stick bundles carry the records
# both ways; a concurrent edit becomes a visible conflict and is resolved; and
# both replicas are shown to agree, table by table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh >/dev/null

aidsync="$PWD/build/aidsync"
work=$(mktemp -d /tmp/aidsync-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
hub=(--data "$work/hub")
st=(--data "$work/station")
say() { printf '\n== %s\n' "$*"; }

say "county authority and hub (县法律援助中心)"
authority=$("$aidsync" authority init --out "$work/authority.key")
"$aidsync" init "${hub[@]}" --name 县法律援助中心 --code 0500 --scope 430123 \
  --authority "$authority" --hub --authority-key "$work/authority.key" >/dev/null
echo "authority $authority"

say "township station (城关镇工作站) enrolled offline"
station_key=$("$aidsync" init "${st[@]}" --name 城关镇工作站 --code 0512 --scope 430123/05 --authority "$authority")
"$aidsync" enroll "${hub[@]}" --node-key "$station_key" --name 城关镇工作站 --code 0512 \
  --scope 430123/05 --out "$work/0512.cert"
"$aidsync" install-cert "${st[@]}" "$work/0512.cert"
echo "station key $station_key"

say "the hub publishes the roster, a notice and a target"
wang=$("$aidsync" put "${hub[@]}" lawyers new name=王建国 firm=正义律师事务所 kind=lawyer practice_years=8 phone=13800000001 active=1)
"$aidsync" put "${hub[@]}" lawyers new name=李晓 firm=正义律师事务所 kind=intern practice_years=1 active=1 >/dev/null
"$aidsync" put "${hub[@]}" notices new title=关于做好2015年法律援助工作的通知 \
  body="审批有依据，不批准也有依据；指派通知书必须编号并留存根。" issued_at=2015-03-07 >/dev/null
"$aidsync" put "${hub[@]}" targets new year=2015 station_code=0512 metric=cases value=180 >/dev/null
"$aidsync" bundle create "${hub[@]}" --for 0512 --out "$work/down.bundle"
"$aidsync" bundle apply "${st[@]}" "$work/down.bundle"

say "the station, offline, records its day"
app=$("$aidsync" put "${st[@]}" applications new applicant_name=张桂兰 id_number=430123195804120021 \
  phone=13900000002 address=城关镇新华村3组 category=civil matter=追索劳动报酬 income_status=low_income \
  received_at=2015-04-02 status=approved decision_basis="《法律援助条例》第十条" decided_at=2015-04-03)
case_id=$("$aidsync" put "${st[@]}" cases new application_id="$app" lawyer_id="$wang" category=civil \
  assigned_at=2015-04-03 status=assigned funding=regular)
"$aidsync" get "${st[@]}" cases "$case_id" | grep notice_number
"$aidsync" put "${st[@]}" consultations new channel=walk_in topic=土地承包 summary=咨询土地承包经营权流转 \
  consulted_at=2015-04-02 >/dev/null
"$aidsync" put "${st[@]}" hotline_tickets new caller=刘先生 phone=13700000003 topic=工伤认定 \
  summary=12348热线来电咨询工伤认定程序 received_at=2015-04-02 status=answered >/dev/null
"$aidsync" put "${st[@]}" return_visits new case_id="$case_id" visited_at=2015-05-10 satisfaction=5 \
  fee_charged=0 note=当事人对承办律师表示满意 >/dev/null
echo "a station may not assign a case to an intern:"
"$aidsync" put "${st[@]}" cases new application_id="$app" category=civil status=assigned \
  lawyer_id="$("$aidsync" query "${st[@]}" "SELECT id FROM lawyers WHERE kind='intern'" | tail -1)" \
  2>&1 | sed 's/^/  /' || true

say "information up: a bundle carries the station's records to the hub"
"$aidsync" bundle create "${st[@]}" --for 0500 --out "$work/up.bundle"
"$aidsync" bundle apply "${hub[@]}" "$work/up.bundle"

say "a concurrent edit: hub and station both change the case's outcome while apart"
"$aidsync" put "${hub[@]}" cases "$case_id" outcome=调解结案 >/dev/null
"$aidsync" put "${st[@]}" cases "$case_id" outcome=判决胜诉 >/dev/null
rm -f "$work/down.bundle" "$work/up.bundle"
"$aidsync" bundle create "${hub[@]}" --for 0512 --out "$work/down.bundle" >/dev/null
"$aidsync" bundle create "${st[@]}" --for 0500 --out "$work/up.bundle" >/dev/null
"$aidsync" bundle apply "${st[@]}" "$work/down.bundle" >/dev/null
"$aidsync" bundle apply "${hub[@]}" "$work/up.bundle" >/dev/null
echo "hub sees:";     "$aidsync" conflicts "${hub[@]}" | sed 's/^/  /'
echo "station sees:"; "$aidsync" conflicts "${st[@]}" | sed 's/^/  /'
"$aidsync" resolve "${hub[@]}" cases "$case_id" outcome 判决胜诉
rm -f "$work/down.bundle"
"$aidsync" bundle create "${hub[@]}" --for 0512 --out "$work/down.bundle" >/dev/null
"$aidsync" bundle apply "${st[@]}" "$work/down.bundle" >/dev/null
echo "after resolve on the hub: $("$aidsync" status --json "${st[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["conflicts_open"])') open conflicts at the station"

say "both replicas agree"
for t in lawyers notices targets applications cases consultations hotline_tickets return_visits; do
  if [ "$("$aidsync" list "${hub[@]}" "$t" --json)" = "$("$aidsync" list "${st[@]}" "$t" --json)" ]; then
    printf '  %-16s identical (%s rows)\n' "$t" "$("$aidsync" query "${hub[@]}" "SELECT count(*) FROM $t" | tail -1)"
  else
    printf '  %-16s DIFFERENT\n' "$t"; exit 1
  fi
done

say "over the network: the hub serves, the station syncs with one command"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$aidsync" serve "${hub[@]}" --listen "tcp://127.0.0.1:$port" 2>"$work/hub.log" &
hub_pid=$!
trap 'kill $hub_pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$aidsync" put "${st[@]}" consultations new channel=hotline_12348 topic=讨薪 \
  summary=农民工讨要工资，转法律援助申请 consulted_at=2015-05-12 >/dev/null
"$aidsync" sync "${st[@]}" --peer "tcp://127.0.0.1:$port" --timeout 10
"$aidsync" sync "${st[@]}" --peer "tcp://127.0.0.1:$port" --timeout 10 | sed 's/^/  nothing new: /'
echo "consultations at the hub: $("$aidsync" query "${hub[@]}" "SELECT count(*) FROM consultations" | tail -1)"
kill -TERM $hub_pid && wait $hub_pid || true
sed 's/^/  hub log: /' "$work/hub.log"

say "hub status"
"$aidsync" status "${hub[@]}"
