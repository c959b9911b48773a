/*
 * app.js — the live funnel screen (docs/API.md). No framework: plain DOM,
 * Apache ECharts for the chart, one EventSource for the push.
 *
 * Data flow: /api/v1 (windows) and /api/v1/scopes fill the selectors; then
 * /api/v1/stream?scope=... sends `state` first (snapshots of every window,
 * the m1 points of the chosen history, alerts, freshness: a refresh or a
 * reconnect never blanks anything) and `update` after every snapshot tick
 * (snapshots and the last minutes, merged into the history by bucket);
 * `alert` on every alert transition, which re-reads /api/v1/alerts at once.
 * Breakdowns and leaderboards are re-read with each update, at most every
 * few seconds. Every figure on the page is a number from the API, shown
 * with its raw value in data-value (the browser test compares those), and
 * every rate is shown with its numerator and denominator.
 *
 * Outages: the browser reconnects an EventSource by itself only after a
 * network error; an answer other than 200 on a reconnect (503 while Redis is
 * away or the server is full) closes it for good. So a closed stream, and a
 * failed start (the index or the scopes), is retried here after a backoff
 * (doubling from 1 s, capped at 30 s, with jitter so many screens do not
 * come back in step), until the server answers again.
 *
 * URL: ?scope=ID&window=5m&hours=1..24&mode=big&lang=zh|en, and
 * #token=TOKEN when the API needs a bearer token (a fragment never reaches
 * the server's logs).
 */
(function () {
  'use strict';
  var Q = new URLSearchParams(location.search);
  var TOKEN = new URLSearchParams(location.hash.slice(1)).get('token') || '';
  var LANG = Q.get('lang') === 'zh' ? 'zh' : 'en';
  var BIG = Q.get('mode') === 'big';
  var L = {
    en: {
      title: 'Funnel', scope: 'Scope', window: 'Window', history: 'History', hours_unit: 'h',
      funnel: 'Funnel', uv_exposed: 'Exposed users', uv_interacted: 'Interacting users',
      uv_paid: 'Paying users', exposures: 'Exposures', interactions: 'Interactions',
      payments: 'Payments', revenue: 'Revenue', rate_p: 'P interaction rate',
      rate_r: 'R conversion rate', rate_l: 'L retention', rates_over_time: 'Rates over time (per minute)',
      by_channel: 'By channel', by_community: 'By community', by_product: 'By product',
      leaderboards: 'Leaderboards', alerts: 'Alerts', transitions: 'Latest transitions',
      freshness: 'Freshness', watermark: 'Watermark', last_flush: 'Last flush',
      last_snapshot: 'Last snapshot', live: 'live', connecting: 'connecting…',
      reconnecting: 'reconnecting…', no_data: 'no data yet', no_alerts: 'no alerts',
      no_boards: 'no leaderboards yet', pick_product: 'choose a product scope',
      partition: 'Partition', offset: 'Offset', max_event: 'Latest event', event_lag: 'Event lag', lag: 'Consumer lag',
      n: 'n (exposed users)', rule: 'Rule', state: 'State', since: 'Since', value: 'Value',
      time: 'Time', rank: '#', name: 'Scope', pending: 'pending', firing: 'firing',
      resolved: 'resolved', inactive: 'inactive', of: 'of', all: 'all'
    },
    zh: {
      title: '转化漏斗', scope: '范围', window: '窗口', history: '历史', hours_unit: '小时',
      funnel: '漏斗', uv_exposed: '曝光用户', uv_interacted: '互动用户', uv_paid: '付费用户',
      exposures: '曝光', interactions: '互动', payments: '支付', revenue: '收入',
      rate_p: 'P 互动率', rate_r: 'R 转化率', rate_l: 'L 留存', rates_over_time: '转化率走势（每分钟）',
      by_channel: '按渠道', by_community: '按社群', by_product: '按产品', leaderboards: '排行榜',
      alerts: '告警', transitions: '最近状态变化', freshness: '数据新鲜度', watermark: '水位线',
      last_flush: '最近写入', last_snapshot: '最近快照', live: '实时', connecting: '连接中…',
      reconnecting: '重新连接中…', no_data: '暂无数据', no_alerts: '无告警', no_boards: '暂无排行榜',
      pick_product: '请选择一个产品', partition: '分区', offset: '位点', max_event: '最新事件',
      event_lag: '事件延迟', lag: '消费积压', n: 'n（曝光用户）', rule: '规则', state: '状态', since: '开始',
      value: '数值', time: '时间', rank: '名次', name: '范围', pending: '待定', firing: '触发中',
      resolved: '已恢复', inactive: '未激活', of: '/', all: '全部'
    }
  }[LANG];
  var $ = function (id) { return document.getElementById(id); };
  var S = { scope: Q.get('scope') || 'all', window: Q.get('window') || '', hours: +(Q.get('hours') || 1),
            windows: [], points: {}, snap: null, es: null, lastSide: 0, scopes: [] };
  /* whole hours only: the stream takes whole minutes (?hours=1.01 would ask for 60.6 and be refused) */
  if (!(S.hours >= 1 && S.hours <= 24 && S.hours === Math.floor(S.hours))) S.hours = 1;
  window.__fdLoadedAt = Date.now(); /* the browser test checks no reload happened */
  /* `update` events handled and the latest one's data: the browser test
   * tells numbers moved by an update from a reconnect's fresh `state` */
  window.__fdUpdates = 0;
  window.__fdLastUpdate = null;
  var retry = { n: 0, timer: 0 };
  /* ms to wait before attempt n+1: 1 s doubling to 30 s, times 0.5..1 (jitter) */
  function backoff() {
    var ms = Math.min(30000, 1000 * Math.pow(2, Math.min(retry.n, 5)));
    retry.n++;
    return Math.round(ms * (0.5 + Math.random() / 2));
  }

  document.documentElement.lang = LANG === 'zh' ? 'zh-CN' : 'en';
  if (BIG) document.body.classList.add('big');
  document.querySelectorAll('[data-i18n]').forEach(function (e) {
    if (L[e.dataset.i18n]) e.textContent = L[e.dataset.i18n];
  });
  document.title = 'funneld · ' + L.title;

  function api(path) {
    var h = TOKEN ? { Authorization: 'Bearer ' + TOKEN } : {};
    return fetch('/api/v1/' + path, { headers: h, cache: 'no-store' }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) throw new Error((j.error && j.error.message) || r.status);
        return j;
      });
    });
  }
  function fmt(v) { return v === null || v === undefined || v === '' ? '–' : (typeof v === 'number' ? v.toLocaleString(LANG === 'zh' ? 'zh-CN' : 'en-US') : String(v)); }
  function pct(v) { return typeof v === 'number' ? (v * 100).toFixed(2) + '%' : '–'; }
  function ratio(n, d) { return d > 0 ? n / d : null; }
  function when(ms) { return ms ? new Date(ms).toLocaleTimeString(LANG === 'zh' ? 'zh-CN' : 'en-GB') : '–'; }
  function dur(ms) { if (typeof ms !== 'number') return '–'; var s = Math.round(ms / 1000); return s < 120 ? s + ' s' : Math.round(s / 60) + ' min'; }
  function setNum(id, v, text) {
    var e = $(id);
    if (!e) return;
    e.dataset.value = v === null || v === undefined ? '' : String(v);
    e.textContent = text !== undefined ? text : fmt(v);
  }
  function el(tag, text, attrs) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    return e;
  }
  function table(t, head, rows, empty) {
    t.textContent = '';
    var tr = el('tr');
    head.forEach(function (h) { tr.appendChild(el('th', h)); });
    t.appendChild(tr);
    if (!rows.length) {
      var r = el('tr'), c = el('td', empty, { colspan: head.length, 'class': 'empty' });
      r.appendChild(c);
      t.appendChild(r);
    }
    rows.forEach(function (row) {
      var r = el('tr', null, row.attrs || {});
      row.cells.forEach(function (c) { r.appendChild(el('td', fmt(c))); });
      t.appendChild(r);
    });
  }
  function setStatus(state) { var s = $('status'); s.dataset.state = state; s.textContent = L[state]; }

  /* ---- the funnel ---------------------------------------------------- */
  function renderFunnel() {
    var w = S.snap && S.snap.windows ? S.snap.windows[S.window] || {} : {};
    $('funnel-scope').textContent = S.scope + ' · ' + S.window;
    ['uv_exposed', 'uv_interacted', 'uv_paid', 'exposures', 'interactions', 'payments', 'revenue'].forEach(function (k) {
      setNum('v-' + k, w[k] === undefined ? null : w[k]);
    });
    setNum('v-interaction_rate', w.interaction_rate === undefined ? null : w.interaction_rate, pct(w.interaction_rate));
    setNum('v-conversion_rate', w.conversion_rate === undefined ? null : w.conversion_rate, pct(w.conversion_rate));
    $('f-interaction_rate').textContent = '= ' + fmt(w.interactions) + ' / ' + fmt(w.exposures) + ' (' + L.interactions + ' / ' + L.exposures + ')';
    $('f-conversion_rate').textContent = '= ' + fmt(w.uv_paid) + ' / ' + fmt(w.uv_exposed) + ' (' + L.uv_paid + ' / ' + L.uv_exposed + ')';
    var ret = Object.keys(w).filter(function (k) { return /^retention_d\d+$/.test(k); })
      .sort(function (a, b) { return Number(a.slice(11)) - Number(b.slice(11)); }); // d1, d7, d30
    $('retention').hidden = !ret.length;
    $('v-retention').textContent = ret.map(function (k) {
      var d = k.slice(10);
      return d + ' ' + pct(w[k]) + ' = ' + fmt(w['retained_' + d]) + ' / ' + fmt(w['cohort_size_' + d]);
    }).join(' · ');
  }

  /* ---- rates over time -------------------------------------------------- */
  var chart = echarts.init($('chart'), BIG ? 'dark' : null);
  window.addEventListener('resize', function () { chart.resize(); });
  function renderChart() {
    var ts = Object.keys(S.points).map(Number).sort(function (a, b) { return a - b; });
    var lo = Date.now() / 1000 - S.hours * 3600;
    ts = ts.filter(function (t) { return t >= lo; });
    var P = [], R = [];
    ts.forEach(function (t) {
      var p = S.points[t];
      P.push([t * 1000, ratio(p.interactions, p.exposures), p.interactions, p.exposures]);
      R.push([t * 1000, ratio(p.uv_paid, p.uv_exposed), p.uv_paid, p.uv_exposed]);
    });
    chart.setOption({
      backgroundColor: 'transparent', animation: false,
      grid: { left: 50, right: 20, top: 30, bottom: 30 },
      legend: { data: [L.rate_p, L.rate_r] },
      tooltip: {
        trigger: 'axis',
        formatter: function (items) {
          var out = [when(items[0].value[0])];
          items.forEach(function (it) {
            var v = it.value, nm = it.seriesIndex === 0 ? [L.interactions, L.exposures] : [L.uv_paid, L.uv_exposed];
            out.push(it.marker + it.seriesName + ' ' + pct(v[1]) + ' = ' + fmt(v[2]) + ' / ' + fmt(v[3]) + ' (' + nm[0] + ' / ' + nm[1] + ')');
          });
          return out.join('<br>');
        }
      },
      xAxis: { type: 'time' },
      yAxis: { type: 'value', axisLabel: { formatter: function (v) { return (v * 100).toFixed(0) + '%'; } } },
      series: [{ name: L.rate_p, type: 'line', showSymbol: false, connectNulls: false, data: P },
               { name: L.rate_r, type: 'line', showSymbol: false, connectNulls: false, data: R }]
    });
  }

  /* ---- breakdowns, leaderboards, alerts, freshness -------------------------------- */
  function breakdown(id, dim, title) {
    $(id).previousElementSibling.textContent = title;
    return api('breakdown?scope=' + encodeURIComponent(S.scope) + '&dim=' + dim + '&window=' + S.window).then(function (j) {
      table($(id), [L[dim === 'product' ? 'name' : 'name'], L.uv_exposed, L.uv_paid, L.rate_r, L.n],
        j.rows.map(function (r) {
          var s = r.snapshot;
          return { cells: [r.value, s.uv_exposed, s.uv_paid, pct(s.conversion_rate), s.uv_exposed] };
        }), L.no_data);
    });
  }
  function renderSide() {
    var now = Date.now();
    if (now - S.lastSide < 3000) return;
    S.lastSide = now;
    var prod = /^product=[^,]+$/.test(S.scope);
    if (S.scope === 'all') {
      breakdown('bd-channel', 'product', L.by_product).catch(function () {});
      table($('bd-community'), [L.name], [], L.pick_product);
    } else if (prod) {
      breakdown('bd-channel', 'channel', L.by_channel).catch(function () {});
      breakdown('bd-community', 'community', L.by_community).catch(function () {});
    } else {
      table($('bd-channel'), [L.name], [], L.pick_product);
      table($('bd-community'), [L.name], [], L.pick_product);
    }
    api('leaderboards').then(function (j) {
      var boards = j.boards.filter(function (b) { return b.window === S.window; }).slice(0, 3);
      var box = $('boards');
      if (!boards.length) { box.textContent = ''; box.appendChild(el('div', L.no_boards, { 'class': 'empty' })); return; }
      return Promise.all(boards.map(function (b) {
        return api('leaderboards?grouping=' + encodeURIComponent(b.grouping) + '&window=' + b.window + '&metric=' + b.metric + '&limit=5');
      })).then(function (res) {
        box.textContent = '';
        res.forEach(function (r) {
          box.appendChild(el('h3', r.grouping + ' · ' + (L[r.metric] || r.metric) + ' · ' + r.window));
          var t = el('table', null, { 'class': 'grid', 'data-board': r.grouping + ':' + r.metric });
          table(t, [L.rank, L.name, L.value], r.rows.map(function (x) {
            return { cells: [x.rank, x.scope, r.metric === 'conversion_rate'
              ? pct(x.value) + ' = ' + fmt(x.numerator) + ' / ' + fmt(x.denominator) : x.value] };
          }), L.no_data);
          box.appendChild(t);
        });
      });
    }).catch(function () {});
  }
  function renderAlerts(a) {
    table($('alerts'), [L.rule, L.scope, L.state, L.value, L.since], a.alerts.map(function (x) {
      return { attrs: { 'data-state': x.state, 'data-rule': x.rule, 'data-scope': x.scope },
               cells: [x.rule, x.scope, L[x.state] || x.state, typeof x.value === 'number' ? +x.value.toFixed(6) : x.value, when(+x.fired_at || +x.active_since)] };
    }), L.no_alerts);
    table($('transitions'), [L.time, L.rule, L.scope, L.state], a.transitions.slice(-8).reverse().map(function (x) {
      return { attrs: { 'data-state': x.state }, cells: [when(+x.at || +x.ts || +(x.stream_id || '').split('-')[0]), x.rule, x.scope, L[x.state] || x.state] };
    }), L.no_alerts);
  }
  function refreshAlerts() { api('alerts?limit=20').then(renderAlerts).catch(function () {}); }
  function renderFresh(f) {
    if (!f) return;
    $('v-watermark').textContent = when(f.watermark_ms);
    $('v-last_flush').textContent = when(f.last_flush_ms);
    $('v-last_snapshot').textContent = f.last_snapshot ? when(f.last_snapshot.updated_at) : '–';
    table($('partitions'), [L.partition, L.offset, L.lag, L.max_event, L.event_lag, L.last_flush], f.partitions.map(function (p) {
      return { cells: [p.partition, p.offset, p.lag, when(p.max_event_ms), dur(p.event_lag_ms), when(p.last_flush_ms)] };
    }), L.no_data);
  }

  /* ---- the stream ------------------------------------------------------- */
  function mergePoints(list) { (list || []).forEach(function (p) { S.points[p.t] = p; }); }
  function connect() {
    clearTimeout(retry.timer);
    retry.timer = 0;
    if (S.es) S.es.close();
    S.points = {};
    S.snap = null;
    S.lastSide = 0;
    setStatus('connecting');
    var u = 'api/v1/stream?scope=' + encodeURIComponent(S.scope) + '&minutes=' + S.hours * 60 +
            (TOKEN ? '&access_token=' + encodeURIComponent(TOKEN) : '');
    var es = S.es = new EventSource('/' + u);
    es.addEventListener('state', function (e) {
      var d = JSON.parse(e.data);
      S.points = {};
      mergePoints(d.series);
      S.snap = d;
      retry.n = 0;
      setStatus('live');
      renderFunnel(); renderChart(); renderFresh(d.freshness);
      if (d.alerts) renderAlerts(d.alerts);
      S.lastSide = 0; renderSide();
    });
    es.addEventListener('update', function (e) {
      var d = JSON.parse(e.data);
      mergePoints(d.series);
      S.snap = d;
      window.__fdUpdates++;
      window.__fdLastUpdate = d;
      setStatus('live');
      renderFunnel(); renderChart(); renderFresh(d.freshness); renderSide();
    });
    es.addEventListener('alert', refreshAlerts);
    es.onerror = function () {
      setStatus('reconnecting');
      /* CLOSED: the browser gave up (a non-200 answer); CONNECTING: it retries itself */
      if (es.readyState === EventSource.CLOSED && S.es === es && !retry.timer)
        retry.timer = setTimeout(function () { retry.timer = 0; if (S.es === es) connect(); }, backoff());
    };
  }
  function pushUrl() {
    var q = new URLSearchParams(location.search);
    q.set('scope', S.scope); q.set('window', S.window); q.set('hours', S.hours);
    history.replaceState(null, '', '?' + q.toString() + location.hash);
  }

  function fillScopes(list) {
    var sel = $('scope');
    sel.textContent = '';
    if (list.indexOf(S.scope) < 0) list.unshift(S.scope);
    list.forEach(function (id) { sel.appendChild(el('option', id === 'all' ? L.all + ' (all)' : id, { value: id })); });
    sel.value = S.scope;
  }
  function start() {
  return api('').then(function (idx) {
    S.windows = idx.windows;
    if (S.windows.indexOf(S.window) < 0) S.window = S.windows[0];
    var ws = $('window');
    ws.textContent = '';
    S.windows.forEach(function (w) { ws.appendChild(el('option', w, { value: w })); });
    ws.value = S.window;
    $('hours').value = String(S.hours);
    return api('scopes?limit=1000');
  }).then(function (j) {
    S.scopes = j.scopes.map(function (s) { return s.id; });
    fillScopes(S.scopes.slice());
    connect();
    $('scope').onchange = function () { S.scope = this.value; pushUrl(); connect(); };
    $('window').onchange = function () { S.window = this.value; pushUrl(); S.lastSide = 0; renderFunnel(); renderSide(); };
    $('hours').onchange = function () { S.hours = +this.value; pushUrl(); connect(); };
    if (BIG) { /* an operations wall: rotate over `all` and the product scopes */
      var rot = (Q.get('rotate') || '').split(',').filter(Boolean);
      if (!rot.length) rot = S.scopes.filter(function (s) { return s === 'all' || /^product=[^,]+$/.test(s); });
      var secs = +(Q.get('rotate_s') || 20);
      if (rot.length > 1) setInterval(function () {
        S.scope = rot[(rot.indexOf(S.scope) + 1) % rot.length];
        $('scope').value = S.scope;
        connect();
      }, Math.max(5, secs) * 1000);
      if (document.documentElement.requestFullscreen)
        document.addEventListener('dblclick', function () { document.documentElement.requestFullscreen().catch(function () {}); });
    }
  }).catch(function (e) {
    /* a 503 (Redis away) or no server at all: try the start again */
    setStatus('reconnecting');
    $('status').title = String(e.message || e);
    setTimeout(start, backoff());
  });
  }
  start();
})();
