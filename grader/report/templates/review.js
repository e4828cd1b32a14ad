// index.html's script (grader.report.review): sorting and filtering the students' rows, and the
// overrides editor. Student text is only ever set as text (textContent, option labels, values),
// never parsed as markup. The page's Content-Security-Policy runs this script by its hash alone.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("review-data").textContent);
  const $ = (id) => document.getElementById(id);
  const table = $("students");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);

  // ---- sorting: a header sorts by its key, a second click reverses ----------------------------
  let sorted = { key: null, descending: false };

  function compare(a, b, key, numeric) {
    const x = a.dataset[key], y = b.dataset[key];
    if (numeric) {
      if (x === "" || y === "") return (x === "") - (y === "");  // unknown values last, either way
      return Number(x) - Number(y);
    }
    return x.localeCompare(y, undefined, { sensitivity: "base", numeric: true });
  }

  function sortBy(header) {
    const key = header.dataset.key, numeric = header.dataset.type === "number";
    sorted = { key, descending: sorted.key === key ? !sorted.descending : numeric };
    const sign = sorted.descending ? -1 : 1;
    const order = rows.slice().sort((a, b) => {
      const unknown = numeric && (a.dataset[key] === "" || b.dataset[key] === "");
      const c = compare(a, b, key, numeric);
      return (unknown ? c : sign * c) || compare(a, b, "student", false);
    });
    body.append(...order);
    for (const th of table.tHead.rows[0].cells) {
      if (th.dataset.key) th.setAttribute("aria-sort", th === header ? (sorted.descending ? "descending" : "ascending") : "none");
    }
  }

  for (const th of table.tHead.rows[0].cells) {
    if (th.dataset.key) th.addEventListener("click", () => sortBy(th));
  }

  // ---- filtering: text, a kind of student, a check's outcome, a histogram bar -----------------
  const text = $("filter-text"), kind = $("filter-kind"), check = $("filter-check"), outcome = $("filter-outcome");
  let bucket = null;
  const KINDS = {
    all: () => true,
    attention: (row) => row.dataset.attention !== "0",
    error: (row) => row.dataset.status === "error",
    flagged: (row) => row.dataset.flags !== "0",
    similar: (row) => row.dataset.similar !== "0",
    overridden: (row) => row.dataset.overridden !== "0",
  };

  function applyFilters() {
    const words = text.value.trim().toLowerCase();
    const wanted = check.value ? `${check.value}:${outcome.value}` : null;
    let shown = 0;
    for (const row of rows) {
      const visible = KINDS[kind.value](row)
        && (!words || row.textContent.toLowerCase().includes(words))
        && (!wanted || row.dataset.outcomes.split(" ").includes(wanted))
        && (bucket === null || row.dataset.bucket === bucket);
      row.hidden = !visible;
      shown += visible;
    }
    outcome.disabled = !check.value;
    for (const bar of document.querySelectorAll(".bar")) bar.classList.toggle("active", bar.dataset.bucket === bucket);
    $("shown").textContent = `${shown} of ${rows.length} students shown`;
  }

  function showClass() {
    applyFilters();
    $("class").scrollIntoView();
  }

  text.addEventListener("input", applyFilters);
  for (const control of [kind, check, outcome]) control.addEventListener("change", applyFilters);
  for (const bar of document.querySelectorAll(".bar")) {
    bar.addEventListener("click", () => {
      bucket = bucket === bar.dataset.bucket ? null : bar.dataset.bucket;
      showClass();
    });
  }
  for (const link of document.querySelectorAll(".count-link")) {
    link.addEventListener("click", () => {
      check.value = link.dataset.check;
      outcome.value = link.dataset.outcome;
      showClass();
    });
  }
  $("filter-clear").addEventListener("click", () => {
    text.value = ""; kind.value = "all"; check.value = ""; bucket = null;
    applyFilters();
  });

  // ---- overrides: the ones in effect, plus what the instructor sets here, as overrides.toml ---
  const overrides = data.overrides.map((o) => ({ ...o, inEffect: true }));
  const studentSelect = $("override-student"), checkSelect = $("override-check");
  const points = $("override-points"), comment = $("override-comment"), problem = $("override-problem");

  data.students.forEach((student, i) => studentSelect.add(new Option(student, String(i))));
  data.checks.forEach((c, i) => checkSelect.add(new Option(`${c.label} (${c.id})`, String(i))));

  function chosen() {
    const i = Number(studentSelect.value), j = Number(checkSelect.value);
    return { student: data.students[i], check: data.checks[j], held: data.points[i][j] };
  }

  const number = (p) => String(Math.round(p * 100) / 100);

  function describe() {
    const { student, check: c, held } = chosen();
    const most = c.points === null ? "its points in the rubric" : number(c.points);
    let now = held === null ? "not in this student's result"
      : held[2] || held[1] !== null ? `now ${number(held[0])} / ${most}` : "not scored by the autograder";
    if (held !== null && held[1] !== null) now += ` (the autograder gave ${number(held[1])})`;
    $("override-now").textContent = `${student}, ${c.label}: ${now}; points from 0 to ${most}.`;
    const existing = overrides.find((o) => o.student === student && o.check === c.id);
    points.value = existing ? number(existing.points) : "";
    comment.value = existing ? existing.comment : "";
    points.max = c.points === null ? "" : String(c.points);
    problem.textContent = "";
  }

  function add() {
    const { student, check: c } = chosen();
    const value = points.value.trim() === "" ? NaN : Number(points.value);
    if (!Number.isFinite(value) || value < 0 || (c.points !== null && value > c.points)) {
      problem.textContent = `Points for ${c.label} must be a number from 0 to ${c.points === null ? "the check's points in the rubric" : number(c.points)}.`;
      return;
    }
    problem.textContent = "";
    const entry = { student, check: c.id, points: Math.round(value * 100) / 100, comment: comment.value, inEffect: false };
    const at = overrides.findIndex((o) => o.student === student && o.check === c.id);  // one per student and check
    if (at >= 0) overrides[at] = entry; else overrides.push(entry);
    render();
  }

  // A TOML basic string: quotes, backslashes and control characters escaped, everything else as is.
  function tomlString(s) {
    let out = "";
    for (const ch of s) {
      const code = ch.codePointAt(0);
      if (ch === '"' || ch === "\\") out += "\\" + ch;
      else if (code < 0x20 || code === 0x7f) out += "\\u" + code.toString(16).padStart(4, "0");
      else out += ch;
    }
    return `"${out}"`;
  }

  function toml() {
    const lines = ["# overrides.toml: grader grade SUBMISSIONS --out THIS_FOLDER --overrides overrides.toml",
                   "# (written by the class review page; each run applies exactly the overrides in this file)"];
    for (const o of overrides) {
      lines.push("", "[[override]]", `student = ${tomlString(o.student)}`, `check = ${tomlString(o.check)}`,
                 `points = ${number(o.points)}`);
      if (o.comment) lines.push(`comment = ${tomlString(o.comment)}`);
    }
    return lines.join("\n") + "\n";
  }

  function render() {
    const list = $("override-list");
    list.replaceChildren();
    overrides.forEach((o, i) => {
      const label = (data.checks.find((c) => c.id === o.check) || { label: o.check }).label;
      const item = document.createElement("li");
      item.textContent = `${o.student}, ${label}: ${number(o.points)}${o.comment ? ` ("${o.comment}")` : ""}`
        + (o.inEffect ? " (in effect)" : " (new)");
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.addEventListener("click", () => { overrides.splice(i, 1); render(); });
      item.append(" ", remove);
      list.append(item);
    });
    $("override-toml").value = toml();
    $("override-saved").textContent = "";
  }

  async function copy() {
    const area = $("override-toml");
    try {
      await navigator.clipboard.writeText(area.value);
    } catch (e) {  // no clipboard permission (some browsers from file://): the selection, copied the old way
      area.select();
      document.execCommand("copy");
    }
    $("override-saved").textContent = "Copied: paste it into overrides.toml.";
  }

  function download() {
    const url = URL.createObjectURL(new Blob([toml()], { type: "application/toml" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = "overrides.toml";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    $("override-saved").textContent = "Downloaded overrides.toml.";
  }

  studentSelect.addEventListener("change", describe);
  checkSelect.addEventListener("change", describe);
  $("override-add").addEventListener("click", add);
  $("override-copy").addEventListener("click", copy);
  $("override-download").addEventListener("click", download);
  for (const button of document.querySelectorAll(".override-student")) {
    button.addEventListener("click", () => {
      studentSelect.value = button.dataset.index;
      describe();
      $("overrides").scrollIntoView();
      checkSelect.focus();
    });
  }

  applyFilters();
  if (data.students.length && data.checks.length) describe();
  render();
  performance.mark("review-ready");
})();
