// The publish page: "Add a header" appends an empty typed header row.
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-add-header]") : null;
  if (!button) return;
  const template = document.getElementById("header-row-template");
  const body = document.querySelector("#header-rows tbody");
  if (template && body) body.append(template.content.cloneNode(true));
});
