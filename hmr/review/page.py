"""The ``hmr review`` page: one HTML document and one script, no build step, nothing loaded
from elsewhere (users run it on clusters without internet)."""

from hmr.core.schema.fields import SMPL_SOURCES

PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>hmr review</title>
<style>
body{font:13px system-ui,sans-serif;margin:0;display:flex;height:100vh;color:#222}
#side{width:230px;padding:10px;background:#f3f3f3;overflow:auto;flex:none}
#side label{display:block;margin:6px 0 2px}#side input,#side select{width:100%;box-sizing:border-box}
#main{flex:1;overflow:auto;padding:10px}#detail{width:460px;flex:none;overflow:auto;padding:10px;border-left:1px solid #ccc}
#grid{display:flex;flex-wrap:wrap;gap:6px}
.card{width:160px;border:2px solid #ddd;cursor:pointer;background:#fff;font-size:11px}
.card img{width:160px;height:160px;display:block;background:#333}
.card.marked{border-color:#d22;opacity:.75}.card.selected{outline:3px solid #27f}
.card .meta{padding:2px 4px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
#view{width:100%;image-rendering:auto;border:1px solid #999}pre{font-size:11px;white-space:pre-wrap;word-break:break-all}
button{margin:4px 2px}.err{color:#c00}.help{color:#666;font-size:11px}
</style></head><body>
<div id="side">
<h3>hmr review</h3>
<div id="stores"></div>
<label>store<select id="f-store"><option value="">all</option></select></label>
<label>dataset<input id="f-dataset"></label>
<label>split<input id="f-split"></label>
<label>smpl_source<select id="f-smpl_source"><option value="">any</option>@SMPL_SOURCES@</select></label>
<label>has SMPL<select id="f-has_smpl"><option value="">any</option><option value="1">yes</option><option value="0">no</option></select></label>
<label>has 3-D<select id="f-has3d"><option value="">any</option><option value="1">yes</option><option value="0">no</option></select></label>
<label>marked<select id="f-marked"><option value="">any</option><option value="1">yes</option><option value="0">no</option></select></label>
<label>min labelled 2-D joints<input id="f-min_joints2d" type="number"></label>
<label>min fit error<input id="f-min_fit_error" type="number" step="any"></label>
<label>min model error<input id="f-min_eval_error" type="number" step="any"></label>
<label>sort<select id="f-sort"><option value="">store order</option>
<option value="-eval_error">model error, worst first</option><option value="-fit_error">fit error, worst first</option>
<option value="-rarity_mm">pose rarity, rarest first</option><option value="joints2d">fewest labelled joints</option></select></label>
<button id="apply">apply</button>
<hr><label>reason<input id="sel-reason" placeholder="e.g. flipped left/right"></label>
<button id="mark-selection">mark the whole selection</button>
<button id="unmark-selection">unmark the whole selection</button>
<div id="status"></div>
<div id="rarity-progress"></div>
<div id="missing-marks"></div>
<hr><div id="keys" class="help">keys: j / &rarr; next sample, k / &larr; previous, x mark or unmark it
(with the reason typed on the sample, else the one on the left), Esc close the sample</div>
</div>
<div id="main"><div><span id="total"></span> samples
<button id="prev">&lt;</button><span id="page"></span><button id="next">&gt;</button></div>
<div id="grid"></div></div>
<div id="detail"><p>click a sample</p></div>
<script src="/app.js"></script>
</body></html>
"""

PAGE_HTML = PAGE_HTML.replace("@SMPL_SOURCES@", "".join(f"<option>{s}</option>" for s in SMPL_SOURCES))

APP_JS = r"""
'use strict';
const LIMIT = 48;
let offset = 0, total = 0, params = {}, versions = {}, items = [], current = null;  // current: index in items
const $ = (id) => document.getElementById(id);
const FILTERS = ['store', 'dataset', 'split', 'smpl_source', 'has_smpl', 'has3d', 'marked',
                 'min_joints2d', 'min_fit_error', 'min_eval_error', 'sort'];

async function api(url, body) {
  const r = await fetch(url, body === undefined ? {} : {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                       body: JSON.stringify(body)});
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
function status(text, bad) { const s = $('status'); s.textContent = text; s.className = bad ? 'err' : ''; }

let storeList = [];
async function loadStores() {
  const data = await api('/api/stores');
  storeList = data.stores;
  for (const s of data.stores) {
    const o = document.createElement('option'); o.value = s.store;
    o.textContent = `${s.dataset}/${s.split}`; $('f-store').appendChild(o);
  }
  $('stores').textContent = data.stores.map(s => `${s.dataset}/${s.split}: ${s.num_samples}`).join(', ');
  await loadMarks();
}

async function loadMarks() {
  // versions for the next write, and the marks whose sample is not in the store (any more)
  const box = $('missing-marks'); box.innerHTML = '';
  for (const s of storeList) {
    const m = await api('/api/marks?store=' + s.store); versions[s.store] = m.version;
    if (!m.missing.length) continue;
    const line = document.createElement('div'); line.className = 'err missing'; line.dataset.store = s.store;
    line.textContent = `${s.dataset}/${s.split}: ${m.missing.length} marks name samples not in this store ` +
      `(re-converted?): ` + m.missing.slice(0, 5).map(x => `${x.source_key || x.identity} (${x.reason})`).join(', ');
    const b = document.createElement('button'); b.textContent = 'forget them'; b.className = 'forget';
    b.onclick = async () => {
      try { const d = await api('/api/marks', {store: s.store, version: versions[s.store],
                                               forget: m.missing.map(x => x.identity)});
            versions[s.store] = d.version; status(`forgot ${m.missing.length} marks`); }
      catch (e) { status(e.message, true); }
      loadMarks();
    };
    line.appendChild(b); box.appendChild(line);
  }
}

function readFilters() {
  params = {};
  for (const f of FILTERS) { const v = $('f-' + f).value.trim(); if (v !== '') params[f] = v; }
}

async function loadPage() {
  const q = new URLSearchParams({...params, offset: offset, limit: LIMIT});
  let data;
  try { data = await api('/api/samples?' + q); } catch (e) { status(e.message, true); return false; }
  if (data.pending) { waitForRarity(); return false; }
  total = data.total; items = data.items;
  $('total').textContent = total;
  $('page').textContent = ` ${total ? offset + 1 : 0}-${Math.min(offset + LIMIT, total)} `;
  const grid = $('grid'); grid.innerHTML = '';
  items.forEach((it, i) => {
    const c = document.createElement('div');
    c.className = 'card' + (it.mark !== null ? ' marked' : '');
    c.dataset.store = it.store; c.dataset.row = it.row;
    const img = document.createElement('img'); img.loading = 'lazy';
    img.src = `/thumb/${it.store}/${it.row}.jpg`; c.appendChild(img);
    const meta = document.createElement('div'); meta.className = 'meta';
    const err = it.eval_error !== null ? ` err ${it.eval_error}` : (it.fit_error !== null ? ` fit ${it.fit_error}` : '');
    meta.textContent = `#${it.row} ${it.smpl_source} j${it.joints2d}${err}` + (it.mark !== null ? ` [${it.mark}]` : '');
    meta.title = it.image_path; c.appendChild(meta);
    c.onclick = () => openAt(i);
    grid.appendChild(c);
  });
  document.body.dataset.loaded = String(Date.now());
  return true;
}

let rarityTimer = null;
async function waitForRarity() {
  // pose rarity is computed in the background: show how far, poll, then load the page
  if (rarityTimer !== null) return;
  const poll = async () => {
    rarityTimer = null;
    let r;
    try { r = await api('/api/rarity'); } catch (e) { status(e.message, true); return; }
    const failed = r.stores.filter(p => p.state === 'failed');
    if (failed.length) { status('pose rarity failed: ' + failed.map(p => p.error).join('; '), true); return; }
    const busy = r.stores.filter(p => p.state === 'running');
    if (!busy.length) { status(''); $('rarity-progress').textContent = ''; loadPage(); return; }
    const done = busy.reduce((a, p) => a + p.done, 0), all = busy.reduce((a, p) => a + p.total, 0);
    $('rarity-progress').textContent = `computing pose rarity: ${done.toLocaleString()} / ${all.toLocaleString()} samples`;
    status('pose rarity is being computed (once; cached next to the store)');
    rarityTimer = setTimeout(poll, 1000);
  };
  await poll();
}

function cardOf(store, row) { return document.querySelector(`.card[data-store="${store}"][data-row="${row}"]`); }

async function openAt(i) {
  if (i < 0 || i >= items.length) return;
  current = i;
  await openSample(items[i].store, items[i].row, cardOf(items[i].store, items[i].row));
}

async function openSample(store, row, card) {
  document.querySelectorAll('.card.selected').forEach(e => e.classList.remove('selected'));
  if (card) { card.classList.add('selected'); card.scrollIntoView({block: 'nearest'}); }
  const s = await api(`/api/sample/${store}/${row}`);
  versions[store] = s.version;
  const d = $('detail'); d.innerHTML = ''; d.dataset.store = store; d.dataset.row = row;
  const h = document.createElement('h3'); h.textContent = `${s.provenance.dataset}/${s.provenance.split} #${row}`;
  d.appendChild(h);
  const img = document.createElement('img'); img.id = 'view'; img.src = `/view/${store}/${row}.png`;
  d.appendChild(img);
  if (s.mesh !== 'drawn' && s.mesh !== 'no SMPL') {
    const note = document.createElement('div'); note.id = 'mesh-note'; note.className = 'err';
    note.textContent = s.mesh; d.appendChild(note);  // e.g. "no camera: mesh not drawn"
  } else if (s.mesh === 'drawn') {
    const note = document.createElement('div'); note.id = 'mesh-model'; note.className = 'help';
    note.textContent = `mesh: ${s.mesh_model === 'smplx' ? 'SMPL-X' : 'SMPL'}`; d.appendChild(note);
  }
  const m = document.createElement('div'); m.id = 'mark-state';
  m.textContent = s.mark ? `marked: ${s.mark.reason}` : 'not marked'; d.appendChild(m);
  const reason = document.createElement('input'); reason.id = 'mark-reason'; reason.placeholder = 'reason';
  reason.value = s.mark ? s.mark.reason : ''; d.appendChild(reason);
  const b = document.createElement('button'); b.id = 'mark-btn'; b.textContent = 'mark excluded';
  b.onclick = () => mark(store, row, reason.value || 'excluded', false); d.appendChild(b);
  const u = document.createElement('button'); u.id = 'unmark-btn'; u.textContent = 'unmark';
  u.onclick = () => mark(store, row, '', true); d.appendChild(u);
  const pre = document.createElement('pre');
  pre.textContent = JSON.stringify({provenance: s.provenance, eval_error: s.eval_error, eval_metric: s.eval_metric,
                                    fields: s.fields, extra: s.extra}, null, 1);
  d.appendChild(pre);
  d.dataset.marked = s.mark ? '1' : '0';
}

function closeSample() {
  document.querySelectorAll('.card.selected').forEach(e => e.classList.remove('selected'));
  const d = $('detail'); d.innerHTML = '<p>click a sample</p>'; delete d.dataset.store; delete d.dataset.row;
  current = null;
}

async function mark(store, row, reason, clear) {
  const body = {store: store, version: versions[store]};
  if (clear) body.clear = [row]; else { body.set = {}; body.set[row] = reason; }
  try {
    const doc = await api('/api/marks', body);
    versions[store] = doc.version; status(`saved (version ${doc.version})`);
  } catch (e) {
    status(e.message, true);
    const m = await api('/api/marks?store=' + store); versions[store] = m.version;  // next try is on top
    return;
  }
  const keep = current;
  await loadPage();
  const i = items.findIndex(it => it.store === store && it.row === row);
  if (i >= 0) await openAt(i); else { current = keep; await openSample(store, row, null); }
}

async function step(delta) {
  // the next / previous sample of the filtered list, across pages
  if (!items.length) return;
  const i = current === null ? (delta > 0 ? 0 : items.length - 1) : current + delta;
  if (i >= 0 && i < items.length) return openAt(i);
  if (i >= items.length && offset + LIMIT < total) {
    offset += LIMIT; if (await loadPage()) return openAt(0);
  } else if (i < 0 && offset > 0) {
    offset = Math.max(0, offset - LIMIT); if (await loadPage()) return openAt(items.length - 1);
  }
}

function toggleMark() {
  const d = $('detail');
  if (d.dataset.row === undefined) return;
  const reason = ($('mark-reason') && $('mark-reason').value.trim()) || $('sel-reason').value.trim() || 'excluded';
  return mark(Number(d.dataset.store), Number(d.dataset.row), reason, d.dataset.marked === '1');
}

document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const typing = ['INPUT', 'SELECT', 'TEXTAREA'].includes(document.activeElement.tagName);
  if (ev.key === 'Escape') { if (typing) document.activeElement.blur(); else closeSample(); ev.preventDefault(); return; }
  if (typing) return;
  if (ev.key === 'j' || ev.key === 'ArrowRight' || ev.key === 'ArrowDown') { step(1); ev.preventDefault(); }
  else if (ev.key === 'k' || ev.key === 'ArrowLeft' || ev.key === 'ArrowUp') { step(-1); ev.preventDefault(); }
  else if (ev.key === 'x') { toggleMark(); ev.preventDefault(); }
});

async function selection(unmark) {
  // every sample of the applied filters, on every page: the server counts them first
  const reason = $('sel-reason').value.trim();
  if (!unmark && !reason) { status('give a reason', true); return; }
  const body = {params: params, reason: reason, unmark: unmark, versions: versions};
  let n;
  try { n = await api('/api/marks/selection', {...body, dry_run: true}); } catch (e) { status(e.message, true); return; }
  if (n.pending) { waitForRarity(); return; }
  const what = unmark ? `unmark ${n.changed} marked samples of the ${n.count} selected`
                      : `mark all ${n.count} selected samples as excluded ("${reason}")`;
  if (!confirm(`${what}? (every page of the current filters)`)) return;
  try {
    const r = await api('/api/marks/selection', body);
    Object.assign(versions, r.versions);
    status(unmark ? `${r.unmarked} unmarked` : `${r.marked} marked`);
  } catch (e) { status(e.message, true); }
  await loadPage();
}

$('apply').onclick = () => { readFilters(); offset = 0; current = null; loadPage(); };
$('prev').onclick = () => { offset = Math.max(0, offset - LIMIT); current = null; loadPage(); };
$('next').onclick = () => { if (offset + LIMIT < total) { offset += LIMIT; current = null; loadPage(); } };
$('mark-selection').onclick = () => selection(false);
$('unmark-selection').onclick = () => selection(true);
loadStores().then(loadPage).catch(e => status(e.message, true));
"""
