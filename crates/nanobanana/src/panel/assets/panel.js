// The operator panel's one script: asks before destructive actions, and refreshes parts of a
// page that declare `data-refresh="URL"` (their text comes from a JSON endpoint of the panel).
// When the endpoint answers a `state`, every part of the page marked `data-states="a b"` is
// shown in those states only (a broadcast's buttons follow it as it is paused or ends).
document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});
for (const element of document.querySelectorAll("[data-refresh]")) {
  const url = element.getAttribute("data-refresh");
  const every = Number(element.getAttribute("data-every") || 2000);
  const tick = async () => {
    try {
      const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (answer.ok) {
        const figures = await answer.json();
        for (const [key, value] of Object.entries(figures)) {
          const target = element.querySelector(`[data-key="${key}"]`);
          if (target) target.textContent = String(value);
        }
        if (typeof figures.state === "string") {
          for (const part of document.querySelectorAll("[data-states]")) {
            part.hidden = !part.getAttribute("data-states").split(" ").includes(figures.state);
          }
        }
      }
    } catch (_) { /* the next tick tries again */ }
    setTimeout(tick, every);
  };
  setTimeout(tick, every);
}
