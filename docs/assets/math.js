// Render the math that pymdownx.arithmatex (generic mode) marks: \( \) inline, \[ \] display.
// KaTeX is vendored in assets/katex, so the pages render offline.
document.addEventListener("DOMContentLoaded", function () {
  var options = {
    delimiters: [
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    throwOnError: false, // a formula KaTeX cannot parse shows in red (class katex-error), the page still renders
  };
  document.querySelectorAll(".arithmatex").forEach(function (el) {
    renderMathInElement(el, options);
  });
});
