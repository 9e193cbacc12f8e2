// The Cambium console's page: plain JavaScript, no framework, no build step.
// Reads the console's JSON API (tools/console/console_api.h) with the page's token;
// shows commands to run, never runs anything that changes the stack. Data from the
// API is only ever set as text (textContent), never parsed as HTML.
'use strict';

(() => {
  const token = document.querySelector('meta[name="cambium-console-token"]').content;
  const $ = (id) => document.getElementById(id);
  const SVG = 'http://www.w3.org/2000/svg';
  const state = {
    commandOptions: [],
    branch: null,
    history: null,
    picked: null,  // {time, lsn, commits, bucket}
    tablesRequest: 0,
  };

  // --- helpers ---

  async function api(path, params = {}) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
    const res = await fetch(url, {headers: {'X-Cambium-Console': token}, cache: 'no-store'});
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok) {
      throw new Error(body && body.error ? body.error.message : `${res.status} ${res.statusText}`);
    }
    return body;
  }

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'text') node.textContent = v;
      else if (k === 'className') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  function svg(tag, attrs = {}) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  function setStatus(text, error = false) {
    const s = $('status');
    s.textContent = text;
    s.classList.toggle('error', error);
  }

  function bytes(n) {
    if (n === null || n === undefined) return '?';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
  }

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s}s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m}m ${s % 60}s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h}h ${m % 60}m`;
    return `${Math.floor(h / 24)}d ${h % 24}h`;
  }

  // A word for a POSIX shell: as is when safe, else single-quoted.
  function shellWord(s) {
    return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
  }

  // Double quotes for a shell, as the README writes SQL: \ " $ ` escaped.
  function shellDouble(s) {
    return `"${s.replace(/[\\"$`]/g, '\\$&')}"`;
  }

  const RESERVED = new Set(('all and any array as asc both case cast check collate column ' +
    'constraint create current_date current_user default desc distinct do else end except ' +
    'false fetch for foreign from grant group having in initially intersect into lateral ' +
    'leading limit localtime not null offset on only or order placing primary references ' +
    'returning select session_user some symmetric table then to trailing true union unique ' +
    'user using variadic when where window with').split(' '));

  function sqlIdent(s) {
    return /^[a-z_][a-z0-9_]*$/.test(s) && !RESERVED.has(s) ? s : `"${s.replace(/"/g, '""')}"`;
  }

  function utc(iso) {
    return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }

  // An RFC 3339 time (UTC, microseconds) from microseconds since the epoch.
  function rfc3339(micros) {
    const ms = Math.floor(micros / 1000);
    const frac = String(((micros % 1000000) + 1000000) % 1000000).padStart(6, '0');
    return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`);
  }

  // --- branches ---

  async function loadBranches() {
    try {
      const data = await api('/api/branches');
      $('tenant').textContent = `tenant ${data.tenant}`;
      renderBranches(data);
      return data;
    } catch (e) {
      setStatus(`Branches: ${e.message}`, true);
      return null;
    }
  }

  function renderBranches(data) {
    const names = new Set(data.branches.map((b) => b.name));
    const children = new Map();
    for (const b of data.branches) {
      const key = b.parent && names.has(b.parent) && b.parent !== b.name ? b.parent : '';
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(b);
    }
    for (const list of children.values()) list.sort((a, b) => a.name.localeCompare(b.name));
    const now = Date.parse(data.now);
    const seen = new Set();
    const build = (key, level) => {
      const ul = el('ul', level === 1 ? {} : {role: 'group'});
      for (const b of children.get(key) || []) {
        if (seen.has(b.name)) continue;
        seen.add(b.name);
        ul.append(branchItem(b, level, now, () => build(b.name, level + 1)));
      }
      return ul;
    };
    const top = build('', 1);
    // A parent cycle (not expected) must not hide a branch.
    for (const b of data.branches) {
      if (!seen.has(b.name)) {
        seen.add(b.name);
        top.append(branchItem(b, 1, now, () => el('ul')));
      }
    }
    const tree = $('branch-tree');
    tree.replaceChildren(...top.children);
    if (data.branches.length === 0) tree.append(el('li', {className: 'muted', text: 'No branches'}));
  }

  function branchItem(b, level, now, subtree) {
    const li = el('li', {
      role: 'treeitem',
      'aria-level': level,
      'aria-selected': String(b.name === state.branch),
    });
    const button = el('button', {type: 'button', className: 'branch', text: b.name,
                                 dataset: {branch: b.name}});
    button.addEventListener('click', () => selectBranch(b.name));
    li.append(button);
    if (b.protected) li.append(el('span', {className: 'badge protected', text: 'protected'}));
    if (b.expires) {
      const left = Date.parse(b.expires) - now;
      li.append(el('span', {className: 'badge ttl', title: `expires ${b.expires}`,
                            text: left > 0 ? `TTL ${duration(left)}` : 'expired'}));
    }
    const parts = [`unique ${bytes(b.unique_size_bytes)}`, `logical ${bytes(b.logical_size_bytes)}`];
    if (b.branch_lsn) parts.push(`from ${b.parent} at ${b.branch_lsn}`);
    parts.push(`created ${utc(b.created)}`);
    li.append(el('span', {className: 'meta', text: parts.join(' · ')}));
    const sub = subtree();
    if (sub.children.length) li.append(sub);
    return li;
  }

  function selectBranch(name) {
    state.branch = name;
    state.picked = null;
    for (const li of document.querySelectorAll('#branch-tree [role=treeitem]')) {
      const b = li.querySelector(':scope > button.branch');
      li.setAttribute('aria-selected', String(b && b.dataset.branch === name));
    }
    $('history-branch').textContent = name;
    $('history-reload').hidden = false;
    $('picked').hidden = true;
    loadHistory();
  }

  // --- history chart ---

  async function loadHistory() {
    const branch = state.branch;
    $('chart').replaceChildren(el('p', {className: 'muted', text: 'Loading history…'}));
    try {
      const h = await api('/api/history', {branch, buckets: 200});
      if (branch !== state.branch) return;
      state.history = h;
      renderRange(h);
      renderChart(h);
      setStatus('');
    } catch (e) {
      $('chart').replaceChildren(el('p', {className: 'error', text: e.message}));
    }
  }

  function renderRange(h) {
    const r = h.restorable;
    const commits = h.buckets.reduce((n, b) => n + b.commits, 0);
    let text = `${commits} commits from ${utc(h.from)} to ${utc(h.now)} in buckets of ` +
        `${duration(h.bucket_seconds * 1000)}. Restorable from ` +
        `${r.earliest ? utc(r.earliest) : 'no time'} (LSN ${r.earliest_lsn}) to the head ` +
        `${r.latest_lsn}; PITR window ${duration(h.pitr_window_seconds * 1000)}.`;
    if (h.truncated) text += ` Counted up to ${utc(h.counted_to)} only (too many commits).`;
    $('history-range').textContent = text;
    $('chart-help').hidden = false;
  }

  function renderChart(h) {
    const W = 800, H = 220, L = 44, R = 12, T = 12, B = 34;
    const pw = W - L - R, ph = H - T - B;
    const from = h.from_unix_micros, to = h.to_unix_micros, span = Math.max(1, to - from);
    const x = (us) => L + ((us - from) / span) * pw;
    const max = Math.max(1, ...h.buckets.map((b) => b.commits));
    const chart = svg('svg', {viewBox: `0 0 ${W} ${H}`, role: 'group',
                              'aria-label': `Commits of ${h.branch} per bucket`});
    const bg = svg('rect', {x: L, y: T, width: pw, height: ph, class: 'chart-bg'});
    bg.addEventListener('click', (ev) => {
      const box = chart.getBoundingClientRect();
      const px = ((ev.clientX - box.left) / box.width) * W;
      const us = Math.round(from + ((px - L) / pw) * span);
      const now = Date.parse(h.now) * 1000;
      pickTime(Math.min(us, now));
    });
    chart.append(bg);
    const earliest = h.restorable.earliest_unix_micros;
    if (earliest) {
      const wx = Math.max(L, x(earliest));
      chart.append(svg('rect', {x: wx, y: T, width: Math.max(0, L + pw - wx), height: ph,
                                class: 'window'}));
    }
    h.buckets.forEach((b, i) => {
      const x0 = x(b.start_unix_micros);
      const w = Math.max(3, x(b.start_unix_micros + h.bucket_seconds * 1e6) - x0 - 1);
      const bh = Math.max(2, (b.commits / max) * ph);
      const bar = svg('rect', {x: x0, y: T + ph - bh, width: w, height: bh,
                               class: b.restorable ? 'bar' : 'bar old', tabindex: 0,
                               role: 'button', 'data-index': i, 'data-last-commit': b.last_commit,
                               'aria-label': `${b.commits} commits from ${utc(b.start)}, ` +
                                   `last at ${utc(b.last_commit)}` +
                                   (b.restorable ? '' : ' (not restorable)')});
      const title = svg('title');
      title.textContent = `${b.commits} commits; last ${b.last_commit} (LSN ${b.last_lsn})`;
      bar.append(title);
      bar.addEventListener('click', (ev) => {
        ev.stopPropagation();
        pickBucket(i);
      });
      bar.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          pickBucket(i);
        }
      });
      chart.append(bar);
    });
    chart.append(svg('line', {x1: L, y1: T + ph, x2: L + pw, y2: T + ph, class: 'axis'}));
    chart.append(svg('line', {x1: L, y1: T, x2: L, y2: T + ph, class: 'axis'}));
    const yl = svg('text', {x: L - 6, y: T + 10, 'text-anchor': 'end', class: 'tick'});
    yl.textContent = String(max);
    chart.append(yl);
    const spanDays = span / 86400e6;
    for (let k = 0; k <= 4; k++) {
      const us = from + (span * k) / 4;
      const iso = new Date(us / 1000).toISOString();
      const label = spanDays > 2 ? iso.slice(5, 16).replace('T', ' ') : iso.slice(11, 19);
      const t = svg('text', {x: x(us), y: H - 12, 'text-anchor': k === 0 ? 'start' : k === 4 ? 'end' : 'middle',
                             class: 'tick'});
      t.textContent = label;
      chart.append(t);
    }
    if (h.buckets.length === 0) {
      const t = svg('text', {x: L + pw / 2, y: T + ph / 2, 'text-anchor': 'middle', class: 'tick'});
      t.textContent = 'No commits in this window';
      chart.append(t);
    }
    $('chart').replaceChildren(chart);
  }

  function markPicked(index, us) {
    const chart = $('chart').querySelector('svg');
    if (!chart) return;
    for (const bar of chart.querySelectorAll('.bar')) {
      bar.classList.toggle('picked', Number(bar.dataset.index) === index);
    }
    const old = chart.querySelector('.cursor');
    if (old) old.remove();
    if (index < 0) {
      const h = state.history;
      const px = 44 + ((us - h.from_unix_micros) / Math.max(1, h.to_unix_micros - h.from_unix_micros)) * 744;
      chart.append(svg('line', {x1: px, y1: 12, x2: px, y2: 186, class: 'cursor'}));
    }
  }

  function pickBucket(i) {
    const b = state.history.buckets[i];
    if (!b.restorable) {
      setStatus(`The commits at ${utc(b.last_commit)} are before the earliest restorable point.`, true);
      return;
    }
    setStatus('');
    state.picked = {time: b.last_commit, lsn: b.last_lsn, commits: b.commits, bucket: b};
    markPicked(i, 0);
    showPicked();
  }

  function pickTime(us) {
    const earliest = state.history.restorable.earliest_unix_micros;
    if (!earliest || us < earliest) {
      setStatus(`${utc(rfc3339(us))} is before the earliest restorable point.`, true);
      return;
    }
    setStatus('');
    state.picked = {time: rfc3339(us), lsn: null, commits: 0, bucket: null};
    markPicked(-1, us);
    showPicked();
  }

  function showPicked() {
    const p = state.picked;
    $('picked').hidden = false;
    const t = $('picked-time');
    t.textContent = p.time;
    t.setAttribute('datetime', p.time);
    $('picked-detail').textContent = p.bucket
        ? `The last of ${p.commits} commit(s) in the bucket from ${utc(p.bucket.start)}; ` +
          `a restore or query at this time starts at LSN ${p.lsn}.`
        : 'The state after the last commit at or before this moment.';
    updateCommands();
    loadTables();
  }

  // --- commands and preview ---

  function selectedTable() {
    const v = $('table-picker').value;
    if (!v) return null;
    const [schema, ...rest] = v.split('.');
    return {schema, name: rest.join('.'), value: v};
  }

  function updateCommands() {
    const p = state.picked;
    if (!p) return;
    const opts = state.commandOptions.map(shellWord).join(' ');
    const tail = opts ? ` ${opts}` : '';
    const t = selectedTable();
    const sql = t
        ? `SELECT * FROM ${t.schema === 'public' ? '' : `${sqlIdent(t.schema)}.`}` +
          `${sqlIdent(t.name)} LIMIT 20`
        : 'SELECT table_schema, table_name FROM information_schema.tables ' +
          "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')";
    const branch = shellWord(state.branch);
    $('command-query').textContent =
        `cambium query ${branch} --at ${p.time}${tail} -- ${shellDouble(sql)}`;
    $('command-restore').textContent = `cambium branch restore ${branch} --at ${p.time}${tail}`;
  }

  async function loadTables() {
    const request = ++state.tablesRequest;
    const picker = $('table-picker');
    picker.disabled = true;
    $('preview-button').disabled = true;
    picker.replaceChildren(el('option', {value: '', text: 'loading tables…'}));
    $('preview').replaceChildren();
    try {
      const data = await api('/api/tables', {branch: state.branch, at: state.picked.time});
      if (request !== state.tablesRequest) return;
      const options = data.tables.map((t) => el('option', {value: `${t.schema}.${t.name}`,
                                                           text: `${t.schema}.${t.name}`}));
      if (options.length === 0) options.push(el('option', {value: '', text: 'no tables'}));
      picker.replaceChildren(...options);
      picker.disabled = data.tables.length === 0;
      $('preview-button').disabled = data.tables.length === 0;
      updateCommands();
    } catch (e) {
      if (request !== state.tablesRequest) return;
      picker.replaceChildren(el('option', {value: '', text: 'no tables'}));
      $('preview').replaceChildren(el('p', {className: 'error', text: e.message}));
    }
  }

  async function preview() {
    const t = selectedTable();
    if (!t || !state.picked) return;
    const out = $('preview');
    out.replaceChildren(el('p', {className: 'muted', text: `Reading ${t.value} as of ${state.picked.time}…`}));
    $('preview-button').disabled = true;
    try {
      const data = await api('/api/preview', {branch: state.branch, at: state.picked.time,
                                              table: t.value, limit: 20});
      const head = el('tr', {}, ...data.columns.map((c) => el('th', {scope: 'col', text: c.name,
                                                                    title: c.type})));
      const rows = data.rows.map((row) => el('tr', {}, ...data.columns.map((c) => {
        const v = row[c.key || c.name];  // a repeated name is keyed NAME_2 (pg_client.h)
        if (v === null) return el('td', {className: 'null', text: 'NULL'});
        return el('td', {text: typeof v === 'object' ? JSON.stringify(v) : String(v)});
      })));
      const caption = el('p', {className: 'muted', text: `${data.row_count} row(s) of ` +
                                   `${data.table} as of ${data.at} (LSN ${data.lsn})`});
      out.replaceChildren(caption, el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows)));
    } catch (e) {
      out.replaceChildren(el('p', {className: 'error', text: e.message}));
    } finally {
      $('preview-button').disabled = false;
    }
  }

  // --- endpoints ---

  async function loadEndpoints() {
    try {
      const data = await api('/api/endpoints');
      const rows = data.endpoints.map((e) => {
        const mode = e.follow ? 'follower' : e.read_only ? 'read-only' : 'read-write';
        let lag = '—';
        if (e.follow) {
          const parts = [];
          if (e.lag_bytes !== null && e.lag_bytes !== undefined) parts.push(bytes(e.lag_bytes));
          if (e.replay_lag_seconds !== null && e.replay_lag_seconds !== undefined) {
            parts.push(`${Number(e.replay_lag_seconds).toFixed(1)} s`);
          }
          lag = parts.length ? parts.join(' / ') : 'unknown';
        }
        return el('tr', {dataset: {endpoint: e.name}},
                  el('td', {text: e.name}), el('td', {text: e.branch}),
                  el('td', {text: String(e.port)}), el('td', {text: mode}),
                  el('td', {}, el('span', {className: `badge ${e.state}`, text: e.state})),
                  el('td', {text: String(e.restarts)}), el('td', {text: lag}));
      });
      if (rows.length === 0) rows.push(el('tr', {}, el('td', {colspan: 7, className: 'muted',
                                                              text: 'No endpoints'})));
      $('endpoints').tBodies[0].replaceChildren(...rows);
    } catch (e) {
      setStatus(`Endpoints: ${e.message}`, true);
    }
  }

  // --- start ---

  $('table-picker').addEventListener('change', updateCommands);
  $('preview-button').addEventListener('click', preview);
  $('history-reload').addEventListener('click', loadHistory);

  async function start() {
    try {
      const info = await api('/api/info');
      state.commandOptions = info.command_options || [];
    } catch (e) {
      setStatus(e.message, true);
    }
    await loadBranches();
    await loadEndpoints();
    setInterval(() => {
      if (document.hidden) return;
      loadBranches();
      loadEndpoints();
    }, 10000);
  }
  start();
})();
