(function () {
  const info = JSON.parse(document.getElementById('report-data').textContent);
  const store = 'astrounsup-grades:' + info.run_id;
  // Each grade is typed as its first letter.
  const keys = {};
  for (const [kind, allowed] of Object.entries(info.grade_kinds)) {
    keys[kind] = Object.fromEntries(allowed.map(g => [g[0], g]));
  }
  const columns = info.grade_columns;
  let grades = {};
  try { grades = JSON.parse(localStorage.getItem(store) || '{}'); } catch (e) { grades = {}; }
  // Grades kept before they named their run belong to this one (they are stored under it).
  for (const k in grades) { if (!grades[k].run) grades[k].run = info.run_id; }
  const cards = Array.from(document.querySelectorAll('.card'));
  const kindOf = c => c.dataset.gradeKind;
  const keyOf = c => kindOf(c) + '|' + c.dataset.id;
  function paint() {
    for (const c of cards) {
      const g = grades[keyOf(c)];
      if (g) { c.dataset.grade = g.grade; } else { delete c.dataset.grade; }
      c.querySelector('.grade').textContent = g ? g.grade : '';
    }
    const n = {};
    for (const k in grades) { const g = grades[k]; const t = g.kind + ' ' + g.grade;
                              n[t] = (n[t] || 0) + 1; }
    document.getElementById('grade-counts').textContent = Object.keys(grades).length
      ? '(' + Object.entries(n).map(e => e[0] + ': ' + e[1]).join(', ') + ')' : '';
    document.getElementById('grades-export').value = csv();
  }
  function save() { localStorage.setItem(store, JSON.stringify(grades)); paint(); }
  function rows() {
    return Object.values(grades).sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  }
  // An id a spreadsheet would run as a formula is written after a ' (read_grades drops it).
  const safe = v => (info.formula_starts.includes(String(v).charAt(0)) ? "'" + v : String(v));
  const quote = v => { v = safe(v); return /[",\n\r]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; };
  function csv() {
    return [columns.join(',')].concat(rows().map(
      g => columns.map(c => quote(g[c])).join(','))).join('\n') + '\n';
  }
  function ecsv() {
    const head = ['# %ECSV 1.0', '# ---', '# datatype:'].concat(
      columns.map(c => '# - {name: ' + c + ', datatype: string}'),
      ['# schema: astropy-2.0', columns.join(' ')]);
    const q = v => '"' + safe(v).replace(/"/g, '""') + '"';
    return head.concat(rows().map(g => columns.map(c => q(g[c])).join(' ')))
      .join('\n') + '\n';
  }
  function download(text, name, type) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], {type: type}));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }
  document.getElementById('export-csv').onclick = () => download(csv(), 'grades.csv', 'text/csv');
  document.getElementById('export-ecsv').onclick = () =>
    download(ecsv(), 'grades.ecsv', 'text/plain');
  function move(card, step) {
    const i = cards.indexOf(card) + step;
    if (i < 0 || i >= cards.length) return;
    cards[i].focus();
    cards[i].scrollIntoView({block: 'nearest'});
  }
  // A card enlarged: its picture, each band alone, its id and the files it was read from.
  const zoom = document.getElementById('zoom');
  function openZoom(card) {
    const row = card.dataset.row;
    document.getElementById('zoom-rgb').src = 'thumbs/' + row + '.png';
    document.getElementById('zoom-bands').src = 'bands/' + row + '.png';
    const text = document.getElementById('zoom-text');
    text.textContent = card.dataset.id + (card.dataset.file ? ' \u00b7 file: ' + card.dataset.file : '');
    zoom.hidden = false;
  }
  function closeZoom() { zoom.hidden = true; }
  zoom.addEventListener('click', closeZoom);
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && !zoom.hidden) { closeZoom(); e.preventDefault(); return; }
    const card = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest('.card') : null;
    if (!card) return;
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const k = e.key.toLowerCase();
    if (k === 'v') {
      if (zoom.hidden) { openZoom(card); } else { closeZoom(); }
      e.preventDefault();
      return;
    }
    const step = {j: 1, arrowright: 1, arrowdown: 1, k: -1, arrowleft: -1, arrowup: -1}[k];
    if (step) { move(card, step); e.preventDefault(); return; }
    if (k === 'x') { delete grades[keyOf(card)]; save(); return; }
    const grade = keys[kindOf(card)][k];
    if (!grade) return;
    grades[keyOf(card)] = {object_id: card.dataset.id, grade: grade, kind: kindOf(card),
                           time: new Date().toISOString(), run: info.run_id};
    save();
    move(card, 1);
    e.preventDefault();
  });
  for (const c of cards) {
    c.addEventListener('click', e => {
      if (e.target.tagName === 'A') return;
      c.focus();
      if (e.target.tagName === 'IMG') openZoom(c);
    });
  }
  paint();
})();
