// Every admin list's cells carry their column's name, for admin.css's one-card-per-row layout on phones.
document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("#result_list")) {
    const names = [...table.querySelectorAll("thead th")].map((th) => (th.querySelector(".text") || th).textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.children].forEach((cell, i) => { if (names[i]) cell.dataset.label = names[i]; });
    }
  }
});
