// The Findings table (bookdriver/findings.py): sort by any column, filter by outcome and by words.
// Without JavaScript the table reads in the chapters' order, unfiltered.
document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table.vae-findings-table")) {
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    const bar = document.createElement("div");
    bar.className = "vae-findings-filter";
    const outcomes = Array.from(new Set(rows.map((r) => r.dataset.outcome)));
    const select = document.createElement("select");
    select.setAttribute("aria-label", "Show the claims with this outcome");
    select.add(new Option("every outcome", ""));
    for (const o of outcomes) select.add(new Option(o.replace("-", " "), o));
    const search = document.createElement("input");
    search.type = "search";
    search.placeholder = "words in the claim or what to do";
    search.setAttribute("aria-label", "Show the claims containing these words");
    const count = document.createElement("span");
    bar.append("Show: ", select, " ", search, " ", count);
    table.before(bar);
    const filter = () => {
      const words = search.value.toLowerCase();
      let shown = 0;
      for (const r of rows) {
        const ok = (!select.value || r.dataset.outcome === select.value) && r.textContent.toLowerCase().includes(words);
        r.hidden = !ok;
        shown += ok;
      }
      count.textContent = `${shown} of ${rows.length} claims`;
    };
    select.addEventListener("change", filter);
    search.addEventListener("input", filter);
    filter();
    Array.from(table.tHead.rows[0].cells).forEach((th, col) => {
      th.tabIndex = 0;
      th.title = "Sort by this column";
      let ascending = true;
      const sort = () => {
        const key = (r) => r.cells[col].textContent.trim().toLowerCase();
        const sorted = rows.slice().sort((a, b) => (col === 0 ? key(a).localeCompare(key(b)) || a.dataset.order - b.dataset.order : key(a).localeCompare(key(b))));
        if (!ascending) sorted.reverse();
        ascending = !ascending;
        body.append(...sorted);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => e.key === "Enter" && sort());
    });
  }
});
