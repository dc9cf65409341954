// The /topology/ page: search, focus and the panels around window.flowsGraph.
// The details panel and the dry-run's answer are HTML the server renders (over htmx, from
// /topology/details and /topology/route); this script asks for them, and lights the
// dry-run's route on the graph from the hops its answer carries. Names reach the page as
// text: textContent here, the template engine's escaping in the fragments.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("topology-config").textContent);
  const $ = (id) => document.getElementById(id);
  const statusBox = $("graph-status");
  const details = $("topo-details");
  const results = $("topo-search-results");
  const searchInput = $("topo-search");
  const exchangeSelect = $("dry-exchange");
  const dryForm = $("dry-run");
  const dryResult = $("dry-result");

  function el(tag, options, ...children) {
    const element = document.createElement(tag);
    for (const [key, value] of Object.entries(options || {})) {
      if (key === "text") element.textContent = value;
      else if (key === "className") element.className = value;
      else element.setAttribute(key, value);
    }
    for (const child of children) if (child !== null && child !== undefined) element.append(child);
    return element;
  }

  const exchangeTitle = window.flowsGraph.exchangeTitle;
  const nodeId = window.flowsGraph.nodeId;

  function nameOf(id) {
    const name = id.slice(id.indexOf(":") + 1);
    return id.startsWith("exchange:") ? exchangeTitle(name) : name;
  }

  function showStatus(status) {
    statusBox.hidden = status.ok;
    statusBox.textContent = status.ok ? "" : status.message;
  }

  // --- the panels: fragments from the server ------------------------------------------------

  const PANELS = [details, dryResult];
  // A refusal (bad input, an unknown vhost, exchange or node, the broker down) is a fragment
  // too, with the status the API gives it: shown like an answer.
  const REFUSALS = [400, 404, 502, 503];

  document.body.addEventListener("htmx:beforeSwap", (event) => {
    if (PANELS.includes(event.detail.target) && REFUSALS.includes(event.detail.xhr.status)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function failed(event, reason) {
    const target = event.detail.target;
    if (!PANELS.includes(target)) return;
    const what = target === details ? "The details" : "The dry-run";
    target.replaceChildren(el("p", { className: "alert alert-error", role: "alert", text: what + " failed: " + reason }));
  }
  document.body.addEventListener("htmx:sendError", (event) => failed(event, "the dashboard did not answer."));
  document.body.addEventListener("htmx:responseError", (event) => {
    failed(event, "the dashboard answered HTTP " + event.detail.xhr.status + ".");
  });

  // --- details: what the panel shows, asked of the server -----------------------------------

  let shown = null; // the node the panel describes: {kind, name, channel}

  // A graph node (graph.details(id), a "select") as the server names it.
  function nodeOf(info) {
    return {
      kind: info.kind === "missing" ? "exchange" : info.kind,
      name: info.name,
      channel: info.kind === "consumer" ? info.record.channel : "",
    };
  }

  function idOf(node) {
    if (node.kind === "consumer") return nodeId.consumer({ channel: node.channel, consumer_tag: node.name });
    return nodeId[node.kind](node.name);
  }

  // Ask for a node's panel; again only when `fresh` (the topology changed).
  function showDetails(node, fresh) {
    const same = shown !== null && shown.kind === node.kind && shown.name === node.name && shown.channel === node.channel;
    if (same && !fresh) return;
    shown = node;
    window.htmx.ajax("GET", config.detailsUrl, {
      source: details,
      target: details,
      swap: "innerHTML",
      values: { vhost: config.vhost, kind: node.kind, name: node.name, channel: node.channel || "" },
    });
  }

  function focusOn(id) {
    graph.focus(id);
    const info = graph.details(id);
    if (info !== null) showDetails(nodeOf(info));
  }

  details.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button === null || graph === null) return;
    const action = button.dataset.action;
    if (action === "show") {
      const node = { kind: button.dataset.kind, name: button.dataset.name, channel: "" };
      graph.focus(idOf(node));
      showDetails(node);
    } else if (action === "focus") {
      const here = details.querySelector("[data-node]");
      if (here !== null) graph.focus(idOf(here.dataset));
    } else if (action === "dry-run-from") {
      exchangeSelect.value = button.dataset.exchange;
      $("dry-routing-key").focus();
    }
  });

  // --- search ------------------------------------------------------------------------------

  let searchTimer = null;

  function renderSearch() {
    const text = searchInput.value.trim();
    const hits = graph.search(text, 50);
    results.replaceChildren(
      ...hits.map((hit) => {
        const button = el("button", { type: "button", className: "link-button" }, el("span", { className: "hint", text: hit.kind + " " }), hit.kind === "exchange" ? exchangeTitle(hit.name) : hit.name);
        button.addEventListener("click", () => focusOn(hit.id));
        return el("li", {}, button);
      }),
    );
    if (text !== "" && hits.length === 0) results.replaceChildren(el("li", { className: "hint", text: "No object matches." }));
  }

  searchInput.addEventListener("input", () => {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(() => {
      renderSearch();
      graph.setFilter(searchInput.value);
    }, 200);
  });
  $("topo-search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const hits = graph.search(searchInput.value.trim(), 2);
    if (hits.length === 1) focusOn(hits[0].id);
  });

  // --- exchanges in the dry-run form -------------------------------------------------------

  function fillExchanges(model) {
    const names = [...model.exchanges.keys()].filter((name) => name === "" || !model.exchanges.get(name).internal);
    const current = [...exchangeSelect.options].map((option) => option.value);
    if (current.length === names.length && current.every((name, index) => name === names[index])) return;
    const chosen = exchangeSelect.value;
    exchangeSelect.replaceChildren(...names.map((name) => el("option", { value: name, text: exchangeTitle(name) })));
    if (current.length === 0) {
      // First fill: start from the user's own first exchange rather than amq.* or "".
      const first = names.find((name) => !model.exchanges.get(name).builtin);
      exchangeSelect.value = first !== undefined ? first : "";
    } else if (names.includes(chosen)) exchangeSelect.value = chosen;
  }

  // --- dry-run: htmx asks /topology/route; its answer carries the hops to light up ----------

  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.target !== dryResult || graph === null) return;
    const answer = dryResult.querySelector("[data-route]");
    if (answer !== null) graph.showRoute(JSON.parse(answer.dataset.route));
  });
  $("dry-clear").addEventListener("click", () => {
    for (const slot of dryForm.querySelectorAll("[data-error-for]")) slot.textContent = "";
    dryResult.replaceChildren();
    if (graph !== null) graph.clearRoute();
  });

  // --- wiring ------------------------------------------------------------------------------

  let graph = null;

  function updateFocusBanner() {
    const banner = $("topo-focus");
    banner.hidden = graph.focused === null;
    if (graph.focused !== null) $("topo-focus-name").textContent = nameOf(graph.focused);
  }

  window.flowsGraph
    .mount($("topo-graph"), { vhost: config.vhost, apiUrl: config.apiUrl, nodeLimit: config.nodeLimit })
    .then((mounted) => {
      graph = mounted;
      window.topologyGraph = graph; // for the browser tests and the curious
      showStatus(graph.status);
      if (graph.model !== null) fillExchanges(graph.model);
      graph.on("status", showStatus);
      graph.on("data", (model) => {
        fillExchanges(model);
        if (shown !== null) showDetails(shown, true);
      });
      graph.on("select", (info) => {
        // Unselecting keeps the panel: it still describes the last node clicked.
        if (info !== null) showDetails(nodeOf(info));
      });
      graph.on("scope", updateFocusBanner);
      $("topo-clear-focus").addEventListener("click", () => graph.clearFocus());
      $("show-builtin").addEventListener("change", (event) => graph.setOptions({ showBuiltin: event.target.checked }));
      $("show-dashboard").addEventListener("change", (event) => graph.setOptions({ showDashboard: event.target.checked }));
      document.body.dataset.graphReady = "true";
    })
    .catch((error) => {
      statusBox.hidden = false;
      statusBox.textContent = "The graph could not start: " + error.message;
    });
})();
