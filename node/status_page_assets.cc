// The status page's files, embedded in the binary (no external resources:
// the page works on a machine with no internet, and its Content-Security-
// Policy allows only this origin). The page is a shell; app.js fetches
// /api/status every 5 s and fills it in with textContent only (station names
// and conflict values come from other machines: never parsed as HTML).
// Chinese by default; `?lang=en` for English.
#include "node/status_page.h"

namespace aidsync {

const char* const kStatusPageHtml = R"AIDSYNC(<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>aidsync 同步状态</title>
<link rel="stylesheet" href="/style.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <div>
    <h1 data-i18n="title">同步状态</h1>
    <p id="node" class="node"></p>
  </div>
  <div class="side">
    <a id="lang" href="?lang=en">English</a>
    <p id="updated" class="updated" data-i18n="loading">正在读取…</p>
  </div>
</header>
<main>
  <section>
    <h2 data-i18n="summary">概况</h2>
    <dl id="summary" class="summary"></dl>
  </section>
  <section>
    <h2 data-i18n="stations">工作站</h2>
    <div class="scroll">
    <table id="stations">
      <thead><tr>
        <th data-i18n="name">名称</th><th data-i18n="code">代码</th><th data-i18n="scope">辖区</th>
        <th data-i18n="last_seen">最后联系</th><th data-i18n="last_sync">最后同步</th>
        <th data-i18n="pending">待发 / 待收</th><th data-i18n="clock">时钟偏差</th>
        <th data-i18n="last_error">最近错误</th><th data-i18n="alerts">提醒</th>
      </tr></thead>
      <tbody></tbody>
    </table>
    </div>
  </section>
  <section>
    <h2 data-i18n="alerts">提醒</h2>
    <ul id="alerts" class="alerts"></ul>
  </section>
  <section>
    <h2 data-i18n="conflicts">冲突</h2>
    <div class="scroll">
    <table id="conflicts">
      <thead><tr>
        <th data-i18n="table">表</th><th data-i18n="record">记录</th><th data-i18n="column">字段</th>
        <th data-i18n="winner">当前显示的值</th><th data-i18n="others">其他值</th>
      </tr></thead>
      <tbody></tbody>
    </table>
    </div>
  </section>
</main>
<noscript><p>本页需要 JavaScript。This page needs JavaScript; the same data is at <a href="/api/status">/api/status</a>.</p></noscript>
</body>
</html>
)AIDSYNC";

const char* const kStatusPageJs = R"AIDSYNC('use strict';
(function () {
  var T = {
    zh: {
      title: '同步状态', loading: '正在读取…', summary: '概况', stations: '工作站', alerts: '提醒',
      conflicts: '冲突', name: '名称', code: '代码', scope: '辖区', last_seen: '最后联系', last_sync: '最后同步',
      pending: '待发 / 待收', clock: '时钟偏差', last_error: '最近错误', table: '表', record: '记录',
      column: '字段', winner: '当前显示的值', others: '其他值', other_lang: 'English', other_href: '?lang=en',
      updated: '更新于 ', failed: '无法读取状态：', never: '从未', unknown: '—', none: '无', no_alerts: '无提醒',
      no_conflicts: '无未解决的冲突', no_stations: '没有其他已入网的节点', deleted: '（记录已删除）',
      hidden: '（仅在本机上显示）', revoked: '已吊销', hub: '中心', station: '工作站', node: '本节点',
      own: '本节点变更集', total: '变更集总数', held: '等待中', open: '未解决冲突', forks: '分叉',
      rejected: '已拒绝', revoked_n: '已吊销的密钥', ago_s: ' 秒前', ago_m: ' 分钟前', ago_h: ' 小时前',
      ago_d: ' 天前', s: ' 秒', min: ' 分钟',
      tables: { stations: '工作站', lawyers: '律师', notices: '通知', targets: '目标', duty_rota: '值班表',
        applications: '申请', cases: '案件', consultations: '咨询', hotline_tickets: '12348 热线',
        return_visits: '回访', complaints: '投诉', quality_reviews: '质量评查' }
    },
    en: {
      title: 'Sync status', loading: 'Loading…', summary: 'Summary', stations: 'Stations', alerts: 'Alerts',
      conflicts: 'Conflicts', name: 'Name', code: 'Code', scope: 'Scope', last_seen: 'Last seen',
      last_sync: 'Last sync', pending: 'Pending out / in', clock: 'Clock offset', last_error: 'Last error',
      table: 'Table', record: 'Record', column: 'Column', winner: 'Shown value', others: 'Other values',
      other_lang: '中文', other_href: '?lang=zh', updated: 'Updated ', failed: 'Cannot read the status: ',
      never: 'never', unknown: '—', none: 'none', no_alerts: 'No alerts', no_conflicts: 'No open conflicts',
      no_stations: 'No other enrolled nodes', deleted: '(row deleted)', hidden: '(shown only on this machine)',
      revoked: 'revoked', hub: 'hub', station: 'station', node: 'this node', own: 'own changesets',
      total: 'changesets in all', held: 'held', open: 'open conflicts', forks: 'forks', rejected: 'rejected',
      revoked_n: 'revoked keys', ago_s: ' s ago', ago_m: ' min ago', ago_h: ' h ago', ago_d: ' days ago',
      s: ' s', min: ' min', tables: {}
    }
  };
  var lang = new URLSearchParams(window.location.search).get('lang') === 'en' ? 'en' : 'zh';
  var t = T[lang];

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function localTime(iso) {
    var d = new Date(iso);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  // "3 分钟前 / 3 min ago", measured against the node's own clock (generated_at).
  function ago(iso, now) {
    if (!iso) return iso === null ? t.never : t.unknown;
    var s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
    if (s < 60) return s + t.ago_s;
    if (s < 3600) return Math.floor(s / 60) + t.ago_m;
    if (s < 86400) return Math.floor(s / 3600) + t.ago_h;
    return Math.floor(s / 86400) + t.ago_d;
  }
  function timeCell(iso, now, known) {
    var td = el('td', known ? ago(iso, now) : t.unknown);
    if (iso) td.title = localTime(iso) + ' (' + iso + ')';
    return td;
  }
  function offset(ms) {
    if (ms === null || ms === undefined) return t.unknown;
    // The station's clock minus this node's: + is ahead.
    var a = Math.abs(ms), sign = ms < 0 ? '−' : '+';
    if (a < 1000) return (a === 0 ? '' : sign) + a + ' ms';
    return a < 60000 ? sign + (a / 1000).toFixed(1) + t.s : sign + Math.round(a / 60000) + t.min;
  }
  function list(items, cls) {
    var ul = el('ul', null, cls);
    items.forEach(function (a) { ul.appendChild(el('li', a)); });
    return ul;
  }

  function renderSummary(doc) {
    var dl = document.getElementById('summary');
    clear(dl);
    var rejected = 0;
    Object.keys(doc.rejected || {}).forEach(function (k) { rejected += doc.rejected[k]; });
    [[t.own, doc.log.own_changesets], [t.total, doc.log.total_changesets], [t.held, doc.log.held_changesets],
     [t.open, doc.conflicts_open], [t.forks, doc.forks.length], [t.rejected, rejected],
     [t.revoked_n, doc.revoked.length]].forEach(function (p) {
      var div = el('div', null, p[1] > 0 && p[0] !== t.own && p[0] !== t.total ? 'warn' : '');
      div.appendChild(el('dt', p[0]));
      div.appendChild(el('dd', p[1]));
      dl.appendChild(div);
    });
  }

  function renderStations(doc, now) {
    var body = document.querySelector('#stations tbody');
    clear(body);
    if (doc.stations.length === 0) {
      var tr = el('tr');
      var td = el('td', t.no_stations, 'empty');
      td.colSpan = 9;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    doc.stations.forEach(function (s) {
      var known = s.pending_out !== null;
      var tr = el('tr', null, (s.alerts.length ? 'alert' : '') + (s.revoked ? ' revoked' : ''));
      var name = el('td', s.name);
      if (s.role === 'hub') name.appendChild(el('span', t.hub, 'tag'));
      if (s.revoked) name.appendChild(el('span', t.revoked, 'tag bad'));
      tr.appendChild(name);
      tr.appendChild(el('td', s.code, 'mono'));
      tr.appendChild(el('td', s.scope, 'mono'));
      tr.appendChild(timeCell(s.last_seen, now, known));
      tr.appendChild(timeCell(s.last_sync, now, known));
      tr.appendChild(el('td', known ? s.pending_out + ' / ' + s.pending_in : t.unknown, 'num'));
      tr.appendChild(el('td', offset(s.clock_offset_ms), 'num'));
      tr.appendChild(el('td', s.last_error || '', 'error'));
      var alerts = el('td');
      if (s.alerts.length) alerts.appendChild(list(s.alerts, 'cell-alerts'));
      tr.appendChild(alerts);
      body.appendChild(tr);
    });
  }

  function renderAlerts(doc) {
    var ul = document.getElementById('alerts');
    clear(ul);
    if (doc.alerts.length === 0) ul.appendChild(el('li', t.no_alerts, 'empty'));
    doc.alerts.forEach(function (a) { ul.appendChild(el('li', a)); });
  }

  function version(v) {
    var div = el('div', null, 'version');
    var value = v.value_hidden ? t.hidden : (v.value === null ? 'NULL' : String(v.value));
    div.appendChild(el('span', value, v.value_hidden ? 'value hidden' : 'value'));
    div.appendChild(el('span', v.author + ' · ' + localTime(v.time), 'who'));
    div.title = v.time + ' ' + v.author_key;
    return div;
  }

  function renderConflicts(doc) {
    var body = document.querySelector('#conflicts tbody');
    clear(body);
    if (doc.conflicts.length === 0) {
      var tr = el('tr');
      var td = el('td', t.no_conflicts, 'empty');
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    doc.conflicts.forEach(function (c) {
      var tr = el('tr');
      tr.appendChild(el('td', t.tables[c.table] ? t.tables[c.table] + ' ' + c.table : c.table));
      tr.appendChild(el('td', c.id, 'mono'));
      tr.appendChild(el('td', c.column, 'mono'));
      var w = el('td');
      if (c.winner) w.appendChild(version(c.winner)); else w.appendChild(el('span', t.deleted, 'empty'));
      tr.appendChild(w);
      var o = el('td');
      c.losers.forEach(function (v) { o.appendChild(version(v)); });
      tr.appendChild(o);
      body.appendChild(tr);
    });
  }

  function render(doc) {
    var now = Date.parse(doc.generated_at) || Date.now();
    var n = doc.node;
    document.getElementById('node').textContent =
      n.name + ' (' + n.code + ') · ' + (n.role === 'hub' ? t.hub : t.station) + ' · ' + n.scope;
    renderSummary(doc);
    renderStations(doc, now);
    renderAlerts(doc);
    renderConflicts(doc);
    var u = document.getElementById('updated');
    u.textContent = t.updated + localTime(doc.generated_at) + ':' + pad(new Date(now).getSeconds());
    u.className = 'updated';
  }

  function load() {
    fetch('/api/status', { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) {
        return r.json().then(function (doc) {
          if (!r.ok) throw new Error(doc.error || r.status);
          return doc;
        });
      })
      .then(render)
      .catch(function (e) {
        var u = document.getElementById('updated');
        u.textContent = t.failed + e.message;
        u.className = 'updated failed';
      })
      .then(function () { window.setTimeout(load, 5000); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
    document.title = 'aidsync ' + t.title;
    document.querySelectorAll('[data-i18n]').forEach(function (e) {
      var key = e.getAttribute('data-i18n');
      if (t[key]) e.textContent = t[key];
    });
    var a = document.getElementById('lang');
    a.textContent = t.other_lang;
    a.href = t.other_href;
    load();
  });
})();
)AIDSYNC";

const char* const kStatusPageCss = R"AIDSYNC(:root { --fg: #1d2733; --muted: #5b6776; --line: #d9dee5; --bg: #f6f7f9;
  --warn-bg: #fff4e0; --warn: #8a5300; --bad: #a3231a; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", system-ui, sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; justify-content: space-between; align-items: flex-start; gap: 1em;
  padding: 1em 1.5em; background: #fff; border-bottom: 1px solid var(--line); }
h1 { margin: 0; font-size: 1.4em; }
h2 { margin: 0 0 .5em; font-size: 1.1em; }
.node { margin: .2em 0 0; color: var(--muted); }
.side { text-align: right; }
.side a { color: var(--accent); }
.updated { margin: .3em 0 0; color: var(--muted); font-size: .9em; }
.updated.failed { color: var(--bad); font-weight: bold; }
main { padding: 1em 1.5em; max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 1em; margin-bottom: 1em; }
.summary { display: flex; flex-wrap: wrap; gap: .5em 2em; margin: 0; }
.summary div { min-width: 8em; }
.summary dt { color: var(--muted); font-size: .85em; }
.summary dd { margin: 0; font-size: 1.3em; font-variant-numeric: tabular-nums; }
.summary .warn dd { color: var(--warn); font-weight: bold; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35em .6em; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: normal; font-size: .9em; white-space: nowrap; }
tr.alert td { background: var(--warn-bg); }
tr.revoked td { color: var(--muted); text-decoration: line-through; }
tr.revoked td:first-child { text-decoration: none; }
.mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9em; }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.error { color: var(--bad); }
.empty { color: var(--muted); }
.tag { display: inline-block; margin-left: .4em; padding: 0 .4em; border-radius: 3px; font-size: .8em;
  background: #e8eef6; color: var(--accent); }
.tag.bad { background: #fbe5e3; color: var(--bad); }
ul.alerts { margin: 0; padding-left: 1.2em; }
ul.alerts li { margin: .2em 0; }
ul.cell-alerts { margin: 0; padding-left: 1em; color: var(--warn); font-size: .9em; }
.version { margin-bottom: .3em; }
.version .value { font-weight: bold; margin-right: .6em; }
.version .value.hidden { font-weight: normal; color: var(--muted); }
.version .who { color: var(--muted); font-size: .9em; }
)AIDSYNC";

}  // namespace aidsync
