// The supervisors' search page (/supervisor/search): "Export CSV" and "Export JSON" with a
// progress indicator and "Cancel". Without this script the links are plain downloads.
(function () {
  'use strict';
  var progress = document.getElementById('export-progress');
  var cancel = document.getElementById('export-cancel');
  if (!progress || !cancel || !window.fetch || !window.AbortController) return;
  var running = null;

  function kib(n) { return (n / 1024).toFixed(n < 10240 ? 1 : 0) + ' KiB'; }

  function fileName(resp, fallback) {
    var m = /filename="([^"]+)"/.exec(resp.headers.get('Content-Disposition') || '');
    return m ? m[1] : fallback;
  }

  function finish(text) {
    running = null;
    cancel.hidden = true;
    progress.textContent = text;
  }

  async function exportRows(link) {
    var controller = new AbortController();
    running = controller;
    cancel.hidden = false;
    progress.textContent = 'Export starting…';
    var format = link.dataset.export;
    try {
      var resp = await fetch(link.href, { signal: controller.signal, credentials: 'same-origin' });
      if (!resp.ok) {
        finish('Export failed: ' + resp.status + ' ' + resp.statusText);
        return;
      }
      var total = resp.headers.get('X-Total-Count') || '?';
      var reader = resp.body.getReader();
      var chunks = [], bytes = 0, lines = 0;
      for (;;) {
        var r = await reader.read();
        if (r.done) break;
        chunks.push(r.value);
        bytes += r.value.length;
        for (var i = 0; i < r.value.length; i++) if (r.value[i] === 10) lines++;
        // CSV: a header line, then a line per row; JSON: "[", a line per row, "]".
        var rows = Math.max(0, lines - 1);
        progress.textContent = 'Exporting: ' + rows + ' of ' + total + ' rows, ' + kib(bytes) + ' received.';
      }
      var rowsDone = Math.max(0, format === 'csv' ? lines - 1 : lines - 2);
      var blob = new Blob(chunks, { type: resp.headers.get('Content-Type') || 'application/octet-stream' });
      var a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = fileName(resp, 'interactions.' + format);
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 60000);
      finish('Export done: ' + rowsDone + ' rows, ' + kib(bytes) + '.');
    } catch (err) {
      finish(controller.signal.aborted ? 'Export cancelled.' : 'Export failed: ' + err.message);
    }
  }

  document.addEventListener('click', function (ev) {
    var link = ev.target.closest && ev.target.closest('a[data-export]');
    if (!link) return;
    ev.preventDefault();
    if (running) return;
    exportRows(link);
  });
  cancel.addEventListener('click', function () {
    if (running) running.abort();
  });
})();
