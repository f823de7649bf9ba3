// The copy-link button: the clipboard API where the page may use it, else the old select-and-copy.
(function () {
  const button = document.getElementById("copy-link");
  const field = document.getElementById("share-link");
  const status = document.getElementById("copy-status");
  if (!button || !field) return;

  function fallback() {
    field.focus();
    field.select();
    field.setSelectionRange(0, field.value.length);
    return document.execCommand && document.execCommand("copy");
  }

  function said(ok) {
    status.textContent = ok ? "Link copied." : "Select the link and copy it (Ctrl+C).";
    if (!ok) { field.focus(); field.select(); }
  }

  button.addEventListener("click", () => {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(() => said(true), () => said(fallback()));
    } else {
      said(fallback());
    }
  });
})();
