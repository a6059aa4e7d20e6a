// leaderboard.html: sort and filter the leaderboard, open images full size. Inlined into the page
// (no network, no library); every lookup tolerates a missing element (a page without images).
(function () {
  'use strict';
  var board = document.getElementById('leaderboard');
  var input = document.getElementById('filter');
  var select = document.getElementById('filter-defacer');
  var count = document.getElementById('filter-count');
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  var groups = function () { return board ? board.querySelectorAll('tbody.rows') : []; };

  // Sort on header click, within each defacer's group; numbers compare numerically, '' always last.
  function sortBy(col, asc) {
    each(groups(), function (tbody) {
      var rows = Array.prototype.slice.call(tbody.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        if (x === '' || y === '') { return (x === '') - (y === ''); }
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return asc ? c : -c;
      });
      rows.forEach(function (r) { tbody.appendChild(r); });
    });
  }
  var headers = board ? board.querySelectorAll('thead th') : [];
  each(headers, function (th, col) {
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('asc');
      each(headers, function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      sortBy(col, asc);
    });
  });

  // Filter: every word must occur in the row's id or parts, a word starting with '-' must not.
  function applyFilter() {
    if (!board) { return; }
    var words = (input ? input.value : '').toLowerCase().split(/\s+/).filter(Boolean);
    var defacer = select ? select.value : '';
    var shown = 0, total = 0;
    each(groups(), function (tbody) {
      var visible = 0;
      each(tbody.rows, function (tr) {
        var text = tr.dataset.search || '';
        var ok = (!defacer || tr.dataset.defacer === defacer) && words.every(function (w) {
          return (w.charAt(0) === '-' && w.length > 1) ? text.indexOf(w.slice(1)) < 0 : text.indexOf(w) >= 0;
        });
        tr.hidden = !ok;
        visible += ok ? 1 : 0;
      });
      total += tbody.rows.length;
      shown += visible;
      var head = tbody.previousElementSibling;
      if (head && head.classList.contains('group')) { head.hidden = visible === 0; }
    });
    if (count) { count.textContent = shown + ' of ' + total + ' results shown'; }
  }
  if (input) { input.addEventListener('input', applyFilter); }
  if (select) { select.addEventListener('change', applyFilter); }
  each(document.querySelectorAll('a[data-show-defacer]'), function (a) {
    a.addEventListener('click', function () {
      if (input) { input.value = ''; }
      if (select) { select.value = a.dataset.showDefacer; }
      applyFilter();
    });
  });

  // A link ending in #sort=<column> (#sort=-<column>: descending) or #filter=<words> opens the
  // leaderboard that way; both may be joined with '&'.
  window.location.hash.replace(/^#/, '').split('&').forEach(function (part) {
    var m = /^sort=(-?)(\d+)$/.exec(part);
    var th = m && headers[parseInt(m[2], 10)];
    if (th) { th.click(); if (m[1]) { th.click(); } }
    var f = /^filter=(.*)$/.exec(part);
    if (f && input) { input.value = decodeURIComponent(f[1]); }
  });
  applyFilter();

  // Thumbnails and plots open full size over the page; a click or Escape closes.
  var box = document.getElementById('lightbox');
  if (!box) { return; }
  var big = box.querySelector('img'), caption = box.querySelector('.caption');
  function close() { box.hidden = true; big.removeAttribute('src'); }
  document.addEventListener('click', function (e) {
    var a = e.target.closest ? e.target.closest('a.zoom') : null;
    if (!a) { return; }
    e.preventDefault();
    big.src = a.getAttribute('href');
    caption.textContent = a.dataset.caption || '';
    box.hidden = false;
  });
  box.addEventListener('click', close);
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape' && !box.hidden) { close(); } });
}());
