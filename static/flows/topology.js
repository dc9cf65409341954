// The /topology/ page: search, details panel and dry-run around window.flowsGraph.
// Every name is untrusted: text goes in with textContent, links are built with
// encodeURIComponent, nothing is ever written as HTML.
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
      else if (key === "dataset") Object.assign(element.dataset, value);
      else element.setAttribute(key, value);
    }
    for (const child of children) if (child !== null && child !== undefined) element.append(child);
    return element;
  }

  const exchangeTitle = window.flowsGraph.exchangeTitle;
  const shown = (value) => (value === null || value === undefined ? "—" : String(value));
  const json = (value) => JSON.stringify(value, null, 1);

  function showStatus(status) {
    statusBox.hidden = status.ok;
    statusBox.textContent = status.ok ? "" : status.message;
  }

  // --- details panel -----------------------------------------------------------------------

  function facts(rows) {
    const list = el("dl", { className: "topo-facts" });
    for (const [term, value] of rows) {
      if (value === undefined) continue;
      list.append(el("dt", { text: term }), el("dd", { text: shown(value) }));
    }
    return list;
  }

  function argumentsBlock(title, args) {
    const keys = Object.keys(args || {});
    if (keys.length === 0) return el("p", { className: "hint", text: title + ": none" });
    return el("div", {}, el("h3", { text: title }), el("pre", { className: "topo-args", text: json(args) }));
  }

  function edgeList(title, entries, describe) {
    const section = el("div", {}, el("h3", { text: title + " (" + entries.length + ")" }));
    if (entries.length === 0) {
      section.append(el("p", { className: "hint", text: "none" }));
      return section;
    }
    const list = el("ul", { className: "topo-edges" });
    for (const entry of entries.slice(0, 200)) list.append(el("li", {}, ...describe(entry)));
    if (entries.length > 200) list.append(el("li", { className: "hint", text: "… and " + (entries.length - 200) + " more" }));
    section.append(list);
    return section;
  }

  function nameOf(id) {
    const name = id.slice(id.indexOf(":") + 1);
    return id.startsWith("exchange:") ? exchangeTitle(name) : name;
  }

  function linkTo(id) {
    const button = el("button", { type: "button", className: "link-button topo-node-link", text: nameOf(id) });
    button.addEventListener("click", () => {
      graph.focus(id);
      renderDetails(graph.details(id));
    });
    return button;
  }

  function describeEdge(entry, otherId) {
    const kind = { binding: "binding", e2e: "exchange binding", alternate: "alternate exchange", "dead-letter": "dead letters", consume: "consumer" }[entry.kind] || entry.kind;
    const parts = [linkTo(otherId), el("span", { className: "hint", text: " " + kind })];
    if (entry.label) parts.push(" ", el("code", { text: entry.label }));
    return parts;
  }

  function publishLink(name) {
    const href =
      config.publishUrl + "?vhost=" + encodeURIComponent(config.vhost) + "&exchange=" + encodeURIComponent(name);
    return el("a", { href: href, className: "topo-action", "data-testid": "publish-link", text: "Publish to this exchange" });
  }

  // "name (where it was set)": an alternate or dead-letter exchange, from an argument or a policy.
  function exchangeFrom(name, source) {
    return name === null ? null : exchangeTitle(name) + " (" + source + ")";
  }

  // The facts the panel lists for each kind of node, in order.
  const FACTS = {
    exchange: (record) => [
      ["type", record.type],
      ["durable", record.durable],
      ["auto-delete", record.auto_delete],
      ["internal", record.internal],
      ["alternate exchange", exchangeFrom(record.alternate_exchange, record.alternate_exchange_source)],
      ["policy", record.policy],
    ],
    queue: (record) => [
      ["type", record.type],
      ["ready", record.messages_ready],
      ["unacked", record.messages_unacknowledged],
      ["total", record.messages],
      ["consumers", record.consumer_count],
      ["durable", record.durable],
      ["exclusive", record.exclusive],
      ["auto-delete", record.auto_delete],
      ["dead-letter exchange", exchangeFrom(record.dead_letter_exchange, record.dead_letter_source)],
      ["dead-letter routing key", record.dead_letter_routing_key],
      ["max length", record.max_length],
      ["overflow", record.overflow],
      ["message TTL (ms)", record.message_ttl],
      ["policy", record.policy],
    ],
    consumer: (record) => [
      ["queue", record.queue],
      ["consumer tag", record.consumer_tag],
      ["connection name", record.connection_label],
      ["channel", record.channel],
      ["user", record.user],
      ["prefetch", record.prefetch_count],
      ["ack mode", window.flowsGraph.ackMode(record)],
      ["exclusive", record.exclusive],
      ["active", record.active],
    ],
  };

  // Edges listed by the node at their other end: "source" for incoming, "target" for outgoing.
  function linkList(title, entries, end) {
    return edgeList(title, entries, (entry) => describeEdge(entry, entry[end]));
  }

  function consumerList(consumers) {
    return edgeList("Consumers", consumers, (consumer) => [
      el("code", { text: consumer.label || consumer.consumer_tag }),
      el("span", {
        className: "hint",
        text: " prefetch " + shown(consumer.prefetch_count) + " · " + window.flowsGraph.ackMode(consumer) + " · " + consumer.channel,
      }),
    ]);
  }

  function renderDetails(info) {
    if (info === null || info === undefined) {
      details.replaceChildren(el("p", { className: "hint", text: "Click a node for its details." }));
      return;
    }
    const record = info.record || {};
    const header = el(
      "header",
      {},
      el("p", { className: "topo-kind", text: info.kind }),
      el("h2", { className: "topo-name", "data-testid": "details-name", text: info.kind === "exchange" ? exchangeTitle(info.name) : info.name }),
    );
    const focus = el("button", { type: "button", text: "Focus on its neighbourhood" });
    focus.addEventListener("click", () => graph.focus(info.id));
    const actions = el("p", { className: "topo-actions" }, focus);
    const parts = [header, actions];
    if (info.kind in FACTS) parts.push(facts(FACTS[info.kind](record)), argumentsBlock("Arguments", record.arguments));

    if (info.kind === "exchange") {
      const tryIt = el("button", { type: "button", text: "Dry-run from here" });
      tryIt.addEventListener("click", () => {
        exchangeSelect.value = info.name;
        $("dry-routing-key").focus();
      });
      actions.append(" ", tryIt, " ", publishLink(info.name));
      if (record.is_default) parts.push(el("p", { className: "hint", text: config.defaultExchangeNote }));
      parts.push(linkList("Bindings from here", info.outgoing, "target"), linkList("Bound from", info.incoming, "source"));
    } else if (info.kind === "queue") {
      parts.push(
        linkList("Bound from", info.incoming.filter((entry) => entry.kind !== "consume"), "source"),
        el("p", { className: "hint", text: "Also reached through the default exchange with its name as the routing key." }),
        consumerList(info.consumers),
      );
      const dead = info.outgoing.filter((entry) => entry.kind === "dead-letter");
      if (dead.length > 0) parts.push(linkList("Dead-letters to", dead, "target"));
    } else if (info.kind === "missing") {
      parts.push(
        el("p", { className: "alert alert-warn", text: "This exchange does not exist, but is named as an alternate or dead-letter exchange. Messages sent its way are dropped." }),
        linkList("Named by", info.incoming, "source"),
      );
    }
    details.replaceChildren(...parts);
  }

  // --- search ------------------------------------------------------------------------------

  let searchTimer = null;

  function renderSearch() {
    const text = searchInput.value.trim();
    const hits = graph.search(text, 50);
    results.replaceChildren(
      ...hits.map((hit) => {
        const button = el("button", { type: "button", className: "link-button" }, el("span", { className: "hint", text: hit.kind + " " }), hit.kind === "exchange" ? exchangeTitle(hit.name) : hit.name);
        button.addEventListener("click", () => {
          graph.focus(hit.id);
          renderDetails(graph.details(hit.id));
        });
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
    if (hits.length === 1) {
      graph.focus(hits[0].id);
      renderDetails(graph.details(hits[0].id));
    }
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

  // --- dry-run -----------------------------------------------------------------------------

  function clearFieldErrors() {
    for (const slot of dryForm.querySelectorAll("[data-error-for]")) slot.textContent = "";
  }

  function hopText(hop) {
    if (hop.kind === "alternate-exchange") return "alternate exchange → " + hop.destination;
    if (hop.kind === "default-exchange") return "default exchange → " + hop.destination;
    return (hop.routing_key === "" ? "" : "[" + hop.routing_key + "] ") + "→ " + hop.destination;
  }

  function renderRoute(body) {
    const parts = [];
    const summary = el("p", { className: body.unroutable ? "topo-unroutable" : "topo-routed", "data-testid": "route-summary" });
    if (body.unroutable) summary.append(el("strong", { text: "Unroutable. " }));
    summary.append(body.summary.replace(/^Unroutable: /, ""));
    parts.push(summary);
    if (body.caught_by_alternate_exchange !== null) {
      parts.push(el("p", { className: "hint", text: "Caught by alternate exchange " + body.caught_by_alternate_exchange + "." }));
    }
    if (body.routes.length > 0) {
      const list = el("ol", { className: "topo-chains" });
      for (const route of body.routes) {
        const path = route.paths[0];
        const chain = exchangeTitle(body.exchange) + " " + path.map(hopText).join(" ");
        list.append(el("li", {}, el("strong", { text: route.queue }), el("br"), el("code", { text: chain }), el("br"), el("span", { className: "hint", text: path[path.length - 1].reason })));
      }
      parts.push(el("h3", { text: "Queues reached" }), list);
    }
    if (body.not_matched.length > 0) {
      const list = el("ul", { className: "topo-misses" });
      for (const miss of body.not_matched.slice(0, 100)) {
        list.append(el("li", {}, el("code", { text: exchangeTitle(miss.source) + " → " + miss.destination }), " ", el("span", { className: "hint", text: miss.reason })));
      }
      parts.push(el("h3", { text: "Bindings that did not match" }), list);
    }
    for (const note of body.notes) parts.push(el("p", { className: "hint", text: note }));
    dryResult.replaceChildren(...parts);
  }

  dryForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFieldErrors();
    const params = new URLSearchParams({
      vhost: config.vhost,
      exchange: exchangeSelect.value,
      routing_key: $("dry-routing-key").value,
      headers: $("dry-headers").value,
    });
    let response;
    let body = null;
    try {
      response = await fetch(config.routeUrl + "?" + params.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } });
      body = await response.json();
    } catch (error) {
      dryResult.replaceChildren(el("p", { className: "alert alert-error", role: "alert", text: "The dry-run failed: the dashboard did not answer." }));
      return;
    }
    if (!response.ok) {
      const message = body && body.error ? body.error : "The dry-run failed (HTTP " + response.status + ").";
      const fields = body && body.fields ? body.fields : {};
      for (const field of ["exchange", "headers"]) {
        if (typeof fields[field] === "string") dryForm.querySelector('[data-error-for="' + field + '"]').textContent = fields[field];
      }
      dryResult.replaceChildren(el("p", { className: "alert alert-error", role: "alert", text: message }));
      return;
    }
    renderRoute(body);
    graph.showRoute(body);
  });
  $("dry-clear").addEventListener("click", () => {
    clearFieldErrors();
    dryResult.replaceChildren();
    graph.clearRoute();
  });

  // --- wiring ------------------------------------------------------------------------------

  let graph = null;
  let selected = null;

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
        if (selected !== null) renderDetails(graph.details(selected));
      });
      graph.on("select", (info) => {
        // Unselecting keeps the panel: it still describes the last node clicked.
        if (info === null) return;
        selected = info.id;
        renderDetails(info);
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
