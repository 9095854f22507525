// The status page's script, /app.js (the HTML and CSS are in
// node/status_page_assets.cc). It fetches /api/status every 5 s and fills the
// page in with textContent only (station names and conflict values come from
// other machines: never parsed as HTML), and draws the charts as inline SVG
// built with createElementNS: each station's 7-day sync timeline
// (drawTimeline), the year's records per month (drawMonthly) and the progress
// against each target (drawTargets). No library, nothing external.
// Chinese by default; `?lang=en` for English.
#include "node/status_page.h"

namespace aidsync {

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
      history: '近 7 天同步记录', targets: '目标进度', figures: '本年统计',
      figures_year: function (y) { return y + ' 年统计（按月）'; },
      moved: '有数据往来', idle: '联系，无新数据', sync_failed: '同步失败',
      // [count, failures (shown in red), what moved]
      hist_sum: function (n, bad, sent, recv) {
        return [n + ' 次', bad ? '，失败 ' + bad + ' 次' : '', ' · 发 ' + sent + ' / 收 ' + recv];
      },
      hist_none: '7 天内无同步', hist_more: '（仅显示最近 500 次）', sent: '发送 ', received: '接收 ',
      bytes: ' 字节', they_called: '对方发起', we_called: '本节点发起', error: '错误：', changesets: ' 个变更集',
      month: function (m) { return m + '月'; }, months_total: '合计 ',
      no_month: function (n) { return n + ' 条记录的日期没有月份，未计入'; },
      series: { applications: '申请（按类别）', cases: '案件（按类别）', consultations: '咨询（按渠道）' },
      keys: { criminal: '刑事', civil: '民事', administrative: '行政', other: '其他/未填', walk_in: '来访',
        hotline_12348: '12348 热线', phone: '电话', online: '网络' },
      metrics: { cases: '案件数', consultations: '咨询数', lottery_cases: '彩票公益金案件' },
      th_station: '工作站', metric: '指标', actual_target: '完成 / 目标', progress: '进度',
      no_targets: '本年没有目标', no_figures: '无统计',
      elapsed: function (p) { return '时间进度 ' + p + '%'; },
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
      s: ' s', min: ' min',
      history: 'Sync history, last 7 days', targets: 'Progress against targets', figures: 'This year',
      figures_year: function (y) { return 'Records per month, ' + y; },
      moved: 'data moved', idle: 'in touch, nothing new', sync_failed: 'failed',
      hist_sum: function (n, bad, sent, recv) {
        return [n + (n === 1 ? ' session' : ' sessions'), bad ? ', ' + bad + ' failed' : '',
                ' · sent ' + sent + ' / received ' + recv];
      },
      hist_none: 'No sessions in 7 days', hist_more: ' (the newest 500 shown)', sent: 'sent ',
      received: 'received ', bytes: ' bytes', they_called: 'it called', we_called: 'this node called',
      error: 'error: ', changesets: ' changesets', months_total: 'total ',
      month: function (m) { return 'Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec'.split(' ')[m - 1]; },
      no_month: function (n) { return n + ' records have no month in their date and are not shown'; },
      series: { applications: 'Applications by category', cases: 'Cases by category',
        consultations: 'Consultations by channel' },
      keys: { criminal: 'Criminal', civil: 'Civil', administrative: 'Administrative', other: 'Other / unset',
        walk_in: 'Walk-in', hotline_12348: '12348 hotline', phone: 'Phone', online: 'Online' },
      metrics: { cases: 'Cases', consultations: 'Consultations', lottery_cases: 'Lottery-funded cases' },
      th_station: 'Station', metric: 'Metric', actual_target: 'Actual / target', progress: 'Progress',
      no_targets: 'No targets this year',
      no_figures: 'No figures', elapsed: function (p) { return p + '% of the year gone'; }, tables: {}
    }
  };
  var lang = new URLSearchParams(window.location.search).get('lang') === 'en' ? 'en' : 'zh';
  var t = T[lang];
  var SVG_NS = 'http://www.w3.org/2000/svg';  // a namespace name, never fetched
  var DAY = 86400000;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  // An SVG element with its attributes (numbers and fixed names only, never data).
  function svg(tag, attrs, parent) {
    var e = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (parent) parent.appendChild(e);
    return e;
  }
  // A hover tooltip on an SVG element: a <title> child, its text as textContent.
  function tip(e, text) {
    svg('title', null, e).textContent = text;
    return e;
  }
  function svgText(parent, x, y, text, cls, anchor) {
    var e = svg('text', { x: x, y: y, 'class': cls || '', 'text-anchor': anchor || 'start' }, parent);
    e.textContent = String(text);
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function pad(n) { return n < 10 ? '0' + n : String(n); }
  function localTime(iso) {
    var d = new Date(iso);
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' +
      pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  function clockTime(ms) {
    var d = new Date(ms);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
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
  // A legend: one coloured swatch (class `cls`) and label per entry.
  function legend(entries) {
    var div = el('div', null, 'legend');
    entries.forEach(function (e) {
      var item = el('span', null, 'item');
      item.appendChild(el('span', null, 'sw ' + e[0]));
      item.appendChild(document.createTextNode(e[1]));
      div.appendChild(item);
    });
    return div;
  }
  // Redraw only when what a drawing shows has changed, so a tooltip being
  // read is not pulled away by the next refresh.
  var drawn = {};
  function changed(name, data) {
    var s = JSON.stringify(data);
    if (drawn[name] === s) return false;
    drawn[name] = s;
    return true;
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

  // ---- sync timelines ---------------------------------------------------------

  var TL = { h: 46, base: 32, top: 4 };

  // One station's sessions from `from` to `now` (ms) on a strip `width`
  // pixels wide (drawn 1:1, so the labels keep their size): a mark per
  // session at its start, as wide as it lasted (at least 2 px), its height
  // growing with the changesets moved (log scale against `most`); red and
  // full height when it failed. Midnights (local) are the day lines.
  function drawTimeline(history, from, now, most, width) {
    var W = Math.max(200, Math.round(width || 720)), span = Math.max(1, now - from);
    var x = function (ms) { return Math.max(0, Math.min(W, (ms - from) / span * W)); };
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + TL.h, 'class': 'timeline', role: 'img' });
    svg('rect', { x: 0, y: TL.top, width: W, height: TL.base - TL.top, 'class': 'tl-bg' }, root);
    var d = new Date(from);
    for (var day = new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime(); day < now;) {
      d = new Date(day);
      var next = new Date(d.getFullYear(), d.getMonth(), d.getDate() + 1).getTime();
      var a = x(Math.max(day, from)), b = x(Math.min(next, now));
      if (next < now) svg('line', { x1: b, x2: b, y1: TL.top, y2: TL.base + 2, 'class': 'tl-day' }, root);
      if (b - a > 40) svgText(root, (a + b) / 2, TL.h - 2, pad(d.getMonth() + 1) + '-' + pad(d.getDate()),
                              'tl-label', 'middle');
      day = next;
    }
    svg('line', { x1: 0, x2: W, y1: TL.base, y2: TL.base, 'class': 'tl-axis' }, root);
    var room = TL.base - TL.top;
    history.forEach(function (h) {
      var moved = h.sent + h.received;
      var height = !h.ok ? room : moved === 0 ? 5 : 6 + (room - 6) * Math.log(1 + moved) / Math.log(1 + most);
      var x0 = x(h.start_ms), w = Math.max(2, x(h.end_ms) - x0);
      var mark = svg('rect', { x: Math.min(x0, W - w), y: TL.base - height, width: w, height: height,
        'class': !h.ok ? 'tl-fail' : moved === 0 ? 'tl-idle' : 'tl-ok' }, root);
      tip(mark, localTime(h.start) + ':' + pad(new Date(h.start_ms).getSeconds()) + ' – ' + clockTime(h.end_ms) +
          ' · ' + (h.as_server ? t.they_called : t.we_called) + '\n' +
          t.sent + h.sent + t.changesets + ' (' + h.bytes_sent + t.bytes + ') · ' +
          t.received + h.received + t.changesets + ' (' + h.bytes_received + t.bytes + ')' +
          (h.ok ? '' : '\n' + t.error + h.error));
    });
    return root;
  }

  function renderHistory(doc, now) {
    var from = Date.parse(doc.history_from) || now - 7 * DAY;
    var box = document.getElementById('history');
    if (!changed('history', [lang, Math.floor(now / 60000), box.clientWidth, doc.stations.map(function (s) {
      return [s.key, s.name, s.code, s.history, s.history_truncated];
    })])) return;
    clear(box);
    box.appendChild(legend([['tl-ok', t.moved], ['tl-idle', t.idle], ['tl-fail', t.sync_failed]]));
    if (doc.stations.length === 0) box.appendChild(el('p', t.no_stations, 'empty'));
    var most = 1;
    doc.stations.forEach(function (s) {
      s.history.forEach(function (h) { most = Math.max(most, h.sent + h.received); });
    });
    doc.stations.forEach(function (s) {
      var row = el('div', null, 'tl-row' + (s.revoked ? ' revoked' : ''));
      var name = el('div', null, 'tl-name');
      name.appendChild(el('span', s.name));
      name.appendChild(el('span', s.code, 'mono muted'));
      row.appendChild(name);
      var chart = el('div', null, 'tl-chart');
      row.appendChild(chart);
      var bad = 0, sent = 0, recv = 0;
      s.history.forEach(function (h) { bad += h.ok ? 0 : 1; sent += h.sent; recv += h.received; });
      var sum = el('div', null, 'tl-sum');
      if (!s.history.length) sum.appendChild(el('span', t.hist_none, 'empty'));
      t.hist_sum(s.history.length, bad, sent, recv).forEach(function (part, i) {
        if (s.history.length && part) sum.appendChild(el('span', part, i === 1 ? 'error' : ''));
      });
      if (s.history_truncated) sum.appendChild(el('span', t.hist_more));
      row.appendChild(sum);
      box.appendChild(row);
      chart.appendChild(drawTimeline(s.history, from, now, most, chart.clientWidth));  // laid out: measured
    });
  }

  // ---- the year's figures -------------------------------------------------------

  // The smallest whole 1, 2 or 5 times a power of ten at or above n: the
  // step between gridlines, so at most five of them cover 5n.
  function niceStep(n) {
    var p = Math.pow(10, Math.floor(Math.log(Math.max(1, n)) / Math.LN10));
    return [1, 2, 5, 10].map(function (m) { return m * p; }).filter(function (v) { return v >= n; })[0];
  }

  // A stacked bar per month, one layer per key of the series (class k-KEY).
  function drawMonthly(series) {
    var W = 360, H = 200, L = 34, R = 6, TOP = 12, B = 20;
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, 'class': 'bars', role: 'img' });
    var totals = series.months.map(function (m) {
      return series.keys.reduce(function (sum, k) { return sum + (m[k] || 0); }, 0);
    });
    var most = Math.max.apply(null, totals.concat([1]));
    var step = niceStep(most / 5), top = Math.ceil(most / step) * step;
    var y = function (n) { return H - B - n / top * (H - B - TOP); };
    for (var v = 0; v <= top; v += step) {
      svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), 'class': v === 0 ? 'axis' : 'grid' }, root);
      svgText(root, L - 4, y(v) + 3, v, 'tick', 'end');
    }
    var slot = (W - L - R) / 12, bw = slot * 0.68;
    series.months.forEach(function (m, i) {
      var x0 = L + i * slot + (slot - bw) / 2, acc = 0;
      series.keys.forEach(function (k) {
        var n = m[k] || 0;
        if (n === 0) return;
        var bar = svg('rect', { x: x0, y: y(acc + n), width: bw, height: y(acc) - y(acc + n), 'class': 'k-' + k },
                      root);
        tip(bar, t.month(i + 1) + ' · ' + (t.keys[k] || k) + ' ' + n + ' · ' + t.months_total + totals[i]);
        acc += n;
      });
      if (totals[i] > 0) svgText(root, x0 + bw / 2, y(totals[i]) - 2, totals[i], 'total', 'middle');
      svgText(root, x0 + bw / 2, H - B + 13, i + 1, 'tick', 'middle');
    });
    return root;
  }

  function renderFigures(doc) {
    var f = doc.figures;
    if (!changed('figures', [lang, f ? [f.year, f.applications, f.cases, f.consultations] : null])) return;
    document.getElementById('figures-title').textContent = f ? t.figures_year(f.year) : t.figures;
    var box = document.getElementById('charts');
    clear(box);
    if (!f) {
      box.appendChild(el('p', t.no_figures, 'empty'));
      return;
    }
    ['applications', 'cases', 'consultations'].forEach(function (name) {
      var series = f[name];
      var fig = el('figure', null, 'chart');
      fig.appendChild(el('figcaption', t.series[name] + ' · ' + t.months_total + series.total));
      fig.appendChild(drawMonthly(series));
      fig.appendChild(legend(series.keys.map(function (k) { return ['k-' + k, t.keys[k] || k]; })));
      if (series.no_month > 0) fig.appendChild(el('p', t.no_month(series.no_month), 'note'));
      box.appendChild(fig);
    });
  }

  // A horizontal bar: actual / target, capped at the end of the bar, with a
  // mark at how much of the year has gone by (`elapsed`, 0..1).
  function drawProgress(progress, elapsed) {
    var W = 300, H = 18;
    // Stretched to the cell's width: bars and a line only, nothing that distorts.
    var root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, 'class': 'progress', role: 'img',
      preserveAspectRatio: 'none' });
    svg('rect', { x: 0, y: 3, width: W, height: H - 6, 'class': 'pg-bg' }, root);
    if (progress !== null && progress > 0)
      svg('rect', { x: 0, y: 3, width: Math.min(1, progress) * W, height: H - 6,
        'class': progress >= 1 ? 'pg-done' : progress < elapsed ? 'pg-behind' : 'pg-fill' }, root);
    var ex = elapsed * W;
    tip(svg('line', { x1: ex, x2: ex, y1: 0, y2: H, 'class': 'pg-now', 'vector-effect': 'non-scaling-stroke' }, root),
        t.elapsed(Math.round(elapsed * 100)));
    return root;
  }

  function renderTargets(doc, now) {
    var f = doc.figures;
    var targets = f ? f.targets : [];
    var start = f ? new Date(f.year, 0, 1).getTime() : now, end = f ? new Date(f.year + 1, 0, 1).getTime() : now;
    var elapsed = Math.max(0, Math.min(1, (now - start) / Math.max(1, end - start)));
    if (!changed('targets', [lang, targets, Math.round(elapsed * 1000)])) return;
    var body = document.querySelector('#targets tbody');
    clear(body);
    if (targets.length === 0) {
      var tr = el('tr');
      var td = el('td', t.no_targets, 'empty');
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
    }
    targets.forEach(function (g) {
      var tr = el('tr');
      var who = el('td', g.station_name || g.station_code);
      who.appendChild(el('span', g.station_code, 'mono muted'));
      tr.appendChild(who);
      tr.appendChild(el('td', t.metrics[g.metric] || g.metric));
      var bar = el('td', null, 'bar');
      bar.appendChild(drawProgress(g.progress, elapsed));
      tr.appendChild(bar);
      tr.appendChild(el('td', (g.actual === null ? t.unknown : g.actual) + ' / ' + g.target, 'num'));
      tr.appendChild(el('td', g.progress === null ? t.unknown : Math.round(g.progress * 1000) / 10 + '%',
                        'num' + (g.progress !== null && g.progress >= 1 ? ' done' : '')));
      body.appendChild(tr);
    });
  }

  // ---- alerts, conflicts --------------------------------------------------------

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

  var last = null;  // the last document shown, redrawn when the window is resized

  function render(doc) {
    last = doc;
    var now = Date.parse(doc.generated_at) || Date.now();
    var n = doc.node;
    document.getElementById('node').textContent =
      n.name + ' (' + n.code + ') · ' + (n.role === 'hub' ? t.hub : t.station) + ' · ' + n.scope;
    renderSummary(doc);
    renderStations(doc, now);
    renderHistory(doc, now);
    renderAlerts(doc);
    renderConflicts(doc);
    renderFigures(doc);
    renderTargets(doc, now);
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
      if (typeof t[key] === 'string') e.textContent = t[key];
    });
    var a = document.getElementById('lang');
    a.textContent = t.other_lang;
    a.href = t.other_href;
    var resized = null;
    window.addEventListener('resize', function () {
      window.clearTimeout(resized);
      resized = window.setTimeout(function () {
        if (last) renderHistory(last, Date.parse(last.generated_at) || Date.now());
      }, 200);
    });
    load();
  });
})();
)AIDSYNC";

}  // namespace aidsync
