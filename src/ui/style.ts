/**
 * The whole stylesheet, served at /ui/style.css so the pages' CSP needs no inline style.
 * Up to 1100 px the wide tables turn into cards whose cells say their column (`data-label`); on a
 * phone (up to 760 px) the header wraps too, and long ids wrap instead of pushing the page sideways.
 */
export const STYLE = `
:root { --fg:#1d2433; --muted:#5b6478; --line:#dde1ea; --bg:#f6f7fa; --ok:#1f7a3d; --bad:#b42318; --busy:#9a6700; --warn-bg:#fff6e0; --warn-line:#e8c46a; --bad-bg:#fdecea; --bad-line:#f0a39a; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust:100%; text-size-adjust:100%; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2433; color:#fff; padding:10px 24px; display:flex; flex-wrap:wrap; gap:6px 20px; align-items:center; }
header strong { font-size:16px; margin-right:4px; }
header nav { display:flex; gap:16px; }
header a { color:#cdd5e6; text-decoration:none; }
header a.here, header a:hover { color:#fff; text-decoration:underline; }
header .who { margin-left:auto; display:flex; gap:10px; align-items:center; color:#cdd5e6; font-size:13px; }
header form { margin:0; }
header button { background:none; border:1px solid #5b6478; color:#cdd5e6; border-radius:4px; padding:3px 10px; cursor:pointer; white-space:nowrap; }
main { padding:18px 24px; max-width:1400px; }
h1 { font-size:20px; margin:4px 0 14px; overflow-wrap:anywhere; }
h2 { font-size:16px; margin:22px 0 8px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
td { overflow-wrap:break-word; }
th { background:#eef0f5; font-weight:600; white-space:nowrap; }
th.wrap { white-space:normal; }
code.matcher { overflow-wrap:anywhere; }
td.num { text-align:right; white-space:nowrap; }
table.kv th { white-space:normal; overflow-wrap:break-word; width:28%; }
td.nowrap, .nowrap { white-space:nowrap; }
.name { white-space:nowrap; }
code, pre { font:12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
code { overflow-wrap:break-word; }
.t { white-space:nowrap; }
pre { background:#fff; border:1px solid var(--line); padding:10px; overflow:auto; white-space:pre-wrap; word-break:break-all; margin:4px 0; }
a { color:#2457c5; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; background:#e7e9ef; color:var(--muted); white-space:nowrap; }
.badge.ok { background:#dcf3e3; color:var(--ok); } .badge.bad { background:#fde4e1; color:var(--bad); } .badge.busy { background:#fff1cc; color:var(--busy); }
.muted { color:var(--muted); }
dl.facts { display:grid; grid-template-columns:max-content minmax(0, 1fr); gap:4px 16px; background:#fff; border:1px solid var(--line); padding:12px 16px; margin:0; }
dl.facts dt { color:var(--muted); } dl.facts dd { margin:0; overflow-wrap:anywhere; }
form.filters { display:flex; gap:10px; align-items:end; margin-bottom:12px; flex-wrap:wrap; }
form.filters label, form.pause label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); max-width:100%; }
select { max-width:100%; }
input, select, button { font:inherit; padding:4px 8px; }
.pager { margin-top:10px; }
.login { max-width:360px; margin:80px auto; background:#fff; border:1px solid var(--line); padding:24px; }
.login input { width:100%; margin:8px 0 12px; }
.error { color:var(--bad); }
.banners { padding:12px 24px 0; max-width:1400px; display:flex; flex-direction:column; gap:8px; }
.banner { background:var(--warn-bg); border:1px solid var(--warn-line); border-left-width:5px; padding:8px 12px; display:flex; flex-wrap:wrap; gap:6px 14px; align-items:center; overflow-wrap:anywhere; }
.banner.bad { background:var(--bad-bg); border-color:var(--bad-line); }
.banner .what { flex:1 1 420px; min-width:0; }
.banner .kind { font-weight:700; margin-right:6px; }
.banner ul { margin:4px 0 0; padding-left:18px; }
.banner form { display:inline-flex; gap:6px; margin:0; }
.banner button, form.pause button { cursor:pointer; }
.all-clear { margin:0; font-size:13px; }
form.pause { display:flex; gap:10px; align-items:end; flex-wrap:wrap; background:#fff; border:1px solid var(--line); padding:12px 16px; }
@media (max-width: 1100px) {
  /* Below this the wide tables no longer fit: one card per row, each cell saying its column. */
  table.cards, table.cards tbody, table.cards tr, table.cards td { display:block; width:100%; }
  table.cards { border:none; background:none; }
  table.cards thead { display:none; }
  table.cards tr { background:#fff; border:1px solid var(--line); border-radius:6px; margin-bottom:10px; padding:6px 0; }
  table.cards td { border:none; padding:3px 12px 3px 7.5em; position:relative; text-align:left; white-space:normal; min-height:1.6em; overflow-wrap:anywhere; }
  table.cards td::before { content:attr(data-label); position:absolute; left:12px; width:6em; color:var(--muted); font-size:12px; padding-top:1px; }
  table.cards td[data-label=""] { padding-left:12px; }
  table.cards td[data-label=""]::before { content:none; }
  table.cards .name { white-space:normal; }
}
@media (min-width: 761px) and (max-width: 1100px) {
  /* A tablet: runs and rules two cards abreast. */
  #runs tbody, #rules tbody { display:grid; grid-template-columns:repeat(2, minmax(0, 1fr)); gap:10px; }
  #runs tr, #rules tr { margin:0; }
}
@media (max-width: 760px) {
  header { padding:8px 12px; gap:6px 14px; }
  header .who { font-size:12px; }
  main { padding:12px; }
  .banners { padding:10px 12px 0; }
  .name { white-space:normal; }
  code { overflow-wrap:anywhere; }
  dl.facts { grid-template-columns:minmax(0, 1fr); gap:0; padding:10px 12px; }
  dl.facts dt { margin-top:6px; font-size:12px; }
}
`;

/**
 * Fixes for bull-board's own layout (served at /ui/board.css, linked after its stylesheet): its
 * status tabs are one strip that scrolls sideways with the scrollbar hidden, so at 1280 px the last
 * tabs were cut off with no sign of more; they wrap onto a second line instead. The class names
 * are CSS-module names with a hash suffix, hence the prefix selectors.
 */
export const BOARD_STYLE = `
[class^="statusTabs-"], [class*=" statusTabs-"] { flex-wrap:wrap !important; overflow:visible !important; -webkit-mask-image:none !important; mask-image:none !important; row-gap:2px; }
[class^="statusBar-"], [class*=" statusBar-"] { flex-wrap:wrap; }
`;
