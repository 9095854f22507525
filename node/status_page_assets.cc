// The status page's files, embedded in the binary (no external resources:
// the page works on a machine with no internet, and its Content-Security-
// Policy allows only this origin): the HTML and CSS here, app.js in
// node/status_page_assets_js.cc. The page is a shell; app.js fetches
// /api/status every 5 s and fills it in with textContent only (station names
// and conflict values come from other machines: never parsed as HTML), and
// draws the sync timelines and the year's charts as inline SVG.
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
    <h2 data-i18n="history">近 7 天同步记录</h2>
    <div id="history" class="history"></div>
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
  <section>
    <h2 id="figures-title" data-i18n="figures">本年统计</h2>
    <div id="charts" class="charts"></div>
  </section>
  <section>
    <h2 data-i18n="targets">目标进度</h2>
    <div class="scroll">
    <table id="targets">
      <thead><tr>
        <th data-i18n="th_station">工作站</th><th data-i18n="metric">指标</th><th data-i18n="progress">进度</th>
        <th data-i18n="actual_target">完成 / 目标</th><th></th>
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
#stations td:first-child { white-space: nowrap; }  /* station names stay on one line */
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
.muted { color: var(--muted); margin-left: .5em; }
svg text { font: inherit; fill: var(--muted); }
.legend { display: flex; flex-wrap: wrap; gap: .2em 1.2em; margin: .3em 0; color: var(--muted); font-size: .85em; }
.legend .sw { display: inline-block; width: .9em; height: .9em; margin-right: .35em; border-radius: 2px;
  vertical-align: -.1em; }
.tl-row { display: grid; grid-template-columns: minmax(9em, 14em) minmax(0, 1fr) minmax(10em, 18em); gap: 1em;
  align-items: center; padding: .25em 0; border-bottom: 1px solid var(--line); }
@media (max-width: 1100px) {
  .tl-row { grid-template-columns: minmax(8em, 12em) minmax(0, 1fr); gap: 0 1em; }
  .tl-sum { grid-column: 2; }
}
.tl-row.revoked { opacity: .55; }
.tl-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tl-sum { color: var(--muted); font-size: .85em; font-variant-numeric: tabular-nums; }
.tl-sum .error { color: var(--bad); }
svg.timeline { display: block; width: 100%; height: auto; }
.tl-bg { fill: #f1f3f6; }
.tl-day { stroke: #c9d0d9; stroke-width: 1; }
.tl-axis { stroke: #9aa5b3; stroke-width: 1; }
.tl-label { font-size: 10px; }
.tl-ok { fill: var(--accent); background: var(--accent); }
.tl-idle { fill: #9aa5b3; background: #9aa5b3; }
.tl-fail { fill: var(--bad); background: var(--bad); }
.charts { display: flex; flex-wrap: wrap; gap: 1em 2em; }
figure.chart { margin: 0; flex: 1 1 18em; max-width: 28em; }
figure.chart figcaption { font-weight: bold; margin-bottom: .2em; }
figure.chart .note { margin: .2em 0 0; color: var(--warn); font-size: .85em; }
svg.bars { display: block; width: 100%; height: auto; }
svg.bars .grid { stroke: #e6e9ee; stroke-width: 1; }
svg.bars .axis { stroke: #9aa5b3; stroke-width: 1; }
svg.bars .tick { font-size: 11px; }
svg.bars .total { font-size: 10px; fill: var(--fg); }
.k-criminal { fill: #b8483e; background: #b8483e; }
.k-civil { fill: #1f5fa8; background: #1f5fa8; }
.k-administrative { fill: #d9962b; background: #d9962b; }
.k-walk_in { fill: #2e8b6a; background: #2e8b6a; }
.k-hotline_12348 { fill: #1f5fa8; background: #1f5fa8; }
.k-phone { fill: #7a5bb5; background: #7a5bb5; }
.k-online { fill: #d9962b; background: #d9962b; }
.k-other { fill: #b3bcc7; background: #b3bcc7; }
#targets td.bar { width: 45%; min-width: 12em; vertical-align: middle; }
svg.progress { display: block; width: 100%; height: 1.2em; }
.pg-bg { fill: #eceff3; }
.pg-fill { fill: var(--accent); }
.pg-behind { fill: #d9962b; }
.pg-done { fill: #2e8b6a; }
.pg-now { stroke: var(--fg); stroke-width: 1.5; stroke-dasharray: 2 2; }
td.done { color: #2e8b6a; font-weight: bold; }
)AIDSYNC";

}  // namespace aidsync
