// The live page: what htmx's ws extension does not do on its own.
// Rows arrive as server-rendered HTML (escaped by Django); this script only moves, counts and
// removes them, and writes text with textContent. It keeps the feed bounded, pauses the view
// (not the tap), exports the rows, opens details, animates the graph, and reconnects with
// new filters. The audience page (`/watch/<token>/`) has no filters and no details.
(() => {
  "use strict";

  const RETRIED_BY_HTMX = [1006, 1011, 1012, 1013];
  const CLOSE_REASONS = {
    4003: "this page's address is not one the dashboard serves (DJANGO_ALLOWED_HOSTS)",
    4400: "not watching: fix the filter",
    4401: "signed out: sign in again",
    4403: "the tap was refused",
    4410: "this audience link has expired or was revoked",
  };
  const PULSE_ABOVE_PER_S = 100;

  if (window.htmx) {
    // Quick first retry, then doubling up to 5 s, with jitter so a restarted server is not
    // hit by every page at once.
    htmx.config.wsReconnectDelay = (retry) =>
      Math.min(5000, 250 * 2 ** Math.min(retry, 5)) * (0.5 + Math.random() / 2);
  }

  const root = document.getElementById("live");
  if (!root) return;
  const maxRows = Number(root.dataset.maxRows) || 500;
  const connection = document.getElementById("live-connection");
  const connectionNote = document.getElementById("live-connection-note");
  const pausedNote = document.getElementById("live-paused-note");
  const details = document.getElementById("live-details");
  const form = document.getElementById("live-filters");

  const state = {
    paused: false,
    arrivedWhilePaused: 0,
    graph: null,
    graphLoading: null,
    recent: [], // arrival times of rows in the last second, for the graph's pulse switch
    pulseCounts: new Map(),
    pulseTimer: null,
  };

  // --- the feed ---------------------------------------------------------------------------------

  // While paused, rows go to a hidden buffer that takes over the id the server targets.
  const visibleFeed = () => document.getElementById(state.paused ? "feed-visible" : "feed");
  const bufferFeed = () => (state.paused ? document.getElementById("feed") : null);

  function trim(feed) {
    if (!feed) return;
    while (feed.childElementCount > maxRows) feed.lastElementChild.remove();
  }

  function setConnection(text, kind) {
    connection.textContent = text;
    connection.className = `conn conn-${kind}`;
    connection.dataset.state = kind;
  }

  document.body.addEventListener("htmx:wsConnecting", (event) => {
    if (!isCurrentSocket(event.target)) return;
    setConnection("connecting…", "connecting");
  });
  document.body.addEventListener("htmx:wsOpen", (event) => {
    if (!isCurrentSocket(event.target)) return;
    setConnection("live", "open");
    connectionNote.textContent = "";
  });
  document.body.addEventListener("htmx:wsClose", (event) => {
    if (!isCurrentSocket(event.target)) return;
    const code = event.detail.event.code;
    if (CLOSE_REASONS[code]) {
      setConnection(`closed: ${CLOSE_REASONS[code]}`, "closed");
      return;
    }
    setConnection("reconnecting…", "reconnecting");
    if (!RETRIED_BY_HTMX.includes(code)) {
      // A clean close from the server (a restart, say) is not retried by the extension.
      const wrapper = event.detail.socketWrapper;
      setTimeout(() => isCurrentSocket(event.target) && wrapper.reconnect(), 500);
    }
  });
  document.body.addEventListener("htmx:wsAfterMessage", () => {
    const feed = visibleFeed();
    const buffer = bufferFeed();
    if (buffer) {
      const fresh = buffer.querySelectorAll("[data-pending]");
      state.arrivedWhilePaused += fresh.length;
      for (const row of fresh) row.removeAttribute("data-pending");
      pausedNote.textContent = `paused: ${state.arrivedWhilePaused} arrived`;
      trim(buffer);
      return;
    }
    const fresh = feed.querySelectorAll("[data-pending]");
    for (const row of fresh) {
      row.removeAttribute("data-pending");
      animate(row);
    }
    trim(feed);
  });

  function isCurrentSocket(element) {
    return element && element.id === "live-socket" && document.body.contains(element);
  }

  // --- pause, resume, clear, export ---------------------------------------------------------------

  const pauseButton = root.querySelector('[data-action="pause"]');

  function pause() {
    const feed = document.getElementById("feed");
    feed.id = "feed-visible";
    const buffer = document.createElement("div");
    buffer.id = "feed";
    buffer.hidden = true;
    feed.after(buffer);
    state.paused = true;
    state.arrivedWhilePaused = 0;
    pauseButton.textContent = "Resume";
    pauseButton.setAttribute("aria-pressed", "true");
    pausedNote.textContent = "paused: 0 arrived";
    root.classList.add("is-paused");
  }

  function resume() {
    const buffer = document.getElementById("feed");
    const feed = document.getElementById("feed-visible");
    const arrived = state.arrivedWhilePaused;
    feed.prepend(...buffer.children);
    buffer.remove();
    feed.id = "feed";
    state.paused = false;
    trim(feed);
    pauseButton.textContent = "Pause";
    pauseButton.setAttribute("aria-pressed", "false");
    pausedNote.textContent = `${arrived} arrived while paused`;
    root.classList.remove("is-paused");
  }

  function togglePause() {
    if (state.paused) resume();
    else pause();
  }

  function clearRows() {
    visibleFeed().replaceChildren();
    const buffer = bufferFeed();
    if (buffer) buffer.replaceChildren();
    closeDetails();
    pausedNote.textContent = state.paused ? "paused: 0 arrived" : "";
    state.arrivedWhilePaused = 0;
  }

  function exportRows() {
    // Oldest first, like a log; the window is what the page holds (at most maxRows rows).
    const rows = Array.from(visibleFeed().children).reverse();
    const lines = rows.map((row) => row.dataset.event).filter(Boolean);
    const blob = new Blob([lines.join("\n") + (lines.length ? "\n" : "")], {
      type: "application/x-ndjson",
    });
    const link = document.createElement("a");
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    link.href = URL.createObjectURL(blob);
    link.download = `live-${stamp}.jsonl`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  // --- details ------------------------------------------------------------------------------------

  function csrfHeaders() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    } catch {
      return {};
    }
  }

  function openDetails(row) {
    if (!root.dataset.detailsUrl) return;
    for (const selected of root.querySelectorAll(".live-row.is-selected")) {
      selected.classList.remove("is-selected");
    }
    row.classList.add("is-selected");
    details.hidden = false;
    details.parentElement.classList.add("has-details");
    htmx.ajax("POST", root.dataset.detailsUrl, {
      target: details,
      swap: "innerHTML",
      values: { event: row.dataset.event || "" },
      headers: csrfHeaders(),
    });
  }

  function closeDetails() {
    details.hidden = true;
    details.parentElement.classList.remove("has-details");
    details.replaceChildren();
    for (const selected of root.querySelectorAll(".live-row.is-selected")) {
      selected.classList.remove("is-selected");
    }
  }

  root.addEventListener("click", (event) => {
    const action = event.target.closest("[data-action]");
    if (action) {
      const name = action.dataset.action;
      if (name === "pause") togglePause();
      else if (name === "clear") clearRows();
      else if (name === "export") exportRows();
      else if (name === "graph") toggleGraph();
      else if (name === "presenter") togglePresenter();
      else if (name === "close-details") closeDetails();
      else if (name === "firehose") watchWithFirehose();
      else return;
      event.preventDefault();
      return;
    }
    const row = event.target.closest(".live-row[data-event]");
    if (row) openDetails(row);
  });
  root.addEventListener("keydown", (event) => {
    const row = event.target.closest && event.target.closest(".live-row[data-event]");
    if (row && event.key === "Enter") openDetails(row);
  });

  // --- filters: in the URL, applied by reconnecting -------------------------------------------------

  function filterQuery() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (String(value).trim() !== "" && !(name === "mode" && value === "auto")) {
        params.set(name, value);
      }
    }
    return params;
  }

  function reconnect(params) {
    const old = document.getElementById("live-socket");
    if (old) htmx.remove(old); // closes its socket; the extension does not retry a removed one
    const socket = document.createElement("div");
    socket.id = "live-socket";
    socket.setAttribute("hx-ext", "ws");
    const wsParams = new URLSearchParams(params);
    socket.setAttribute("ws-connect", `${root.dataset.wsPath.split("?")[0]}?${wsParams}`);
    root.append(socket);
    htmx.process(socket);
  }

  form?.addEventListener("submit", (event) => {
    event.preventDefault();
    for (const error of form.querySelectorAll(".field-error")) error.textContent = "";
    connectionNote.textContent = "";
    const params = filterQuery();
    history.replaceState(null, "", `${location.pathname}?${params}`);
    reconnect(params);
  });

  // The bindings-mode notice's offer: the same as choosing "firehose" in the filters.
  function watchWithFirehose() {
    form.elements.mode.value = "firehose";
    form.requestSubmit();
  }

  // --- graph ----------------------------------------------------------------------------------------

  const graphPanel = document.getElementById("live-graph-panel");
  const graphMode = document.getElementById("live-graph-mode");

  function toggleGraph() {
    const button = root.querySelector('[data-action="graph"]');
    graphPanel.hidden = !graphPanel.hidden;
    button?.setAttribute("aria-pressed", String(!graphPanel.hidden)); // none on the audience page
    if (graphPanel.hidden || state.graph || state.graphLoading) return;
    if (!root.dataset.graphApiUrl) {
      graphMode.textContent = "The topology graph is not available on this server.";
      return;
    }
    graphMode.textContent = "loading the topology…";
    state.graphLoading = loadGraphScripts()
      .then(() =>
        window.flowsGraph.mount(document.getElementById("live-graph"), {
          vhost: root.dataset.vhost,
          apiUrl: root.dataset.graphApiUrl,
        }),
      )
      .then((graph) => {
        state.graph = graph;
        // Reachable from the console (and from the browser tests) to see what is drawn.
        window.flowsLiveGraph = graph;
        graphMode.textContent = "each message is drawn along its route";
      })
      .catch((error) => {
        graphMode.textContent = `The graph could not load: ${error && error.message}`;
      })
      .finally(() => {
        state.graphLoading = null;
      });
  }

  // A scenario page shows the graph from the start.
  if ("graphOpen" in root.dataset) queueMicrotask(toggleGraph);

  // Cytoscape is large: loaded only when someone opens the graph, in order.
  function loadGraphScripts() {
    if (window.flowsGraph) return Promise.resolve();
    const urls = (root.dataset.graphScripts || "").split(" ").filter(Boolean);
    return urls.reduce(
      (chain, url) =>
        chain.then(
          () =>
            new Promise((resolve, reject) => {
              const script = document.createElement("script");
              script.src = url;
              script.onload = resolve;
              script.onerror = () => reject(new Error(`could not load ${url}`));
              document.head.append(script);
            }),
        ),
      Promise.resolve(),
    );
  }

  function animate(row) {
    if (!state.graph || graphPanel.hidden) return;
    let route;
    try {
      route = JSON.parse(row.dataset.route || "{}");
    } catch {
      return;
    }
    const now = performance.now();
    state.recent.push(now);
    while (state.recent.length && now - state.recent[0] > 1000) state.recent.shift();
    if (state.recent.length > PULSE_ABOVE_PER_S) {
      // Too many dots to draw smoothly: count per edge and let edges pulse with the rate.
      countForPulse(route);
      return;
    }
    if (route.kind === "deliver") {
      state.graph.animateDelivery({ queue: route.queue, consumer_tag: route.consumer_tag });
    } else {
      state.graph.animateRoute({
        exchange: route.exchange,
        hops: route.hops || [],
        unroutable: Boolean(route.unroutable),
      });
    }
  }

  function countForPulse(route) {
    // Deliveries have no edge key in the graph's contract: only binding edges pulse.
    const keys = (route.hops || []).map((hop) => state.graph.edgeKey(hop)).filter(Boolean);
    for (const key of keys) state.pulseCounts.set(key, (state.pulseCounts.get(key) || 0) + 1);
    if (state.pulseTimer) return;
    graphMode.textContent = `over ${PULSE_ABOVE_PER_S} msg/s: edges pulse with the rate`;
    state.pulseTimer = setTimeout(() => {
      const rates = Object.fromEntries(state.pulseCounts);
      state.pulseCounts.clear();
      state.pulseTimer = null;
      if (state.graph) state.graph.pulse(rates);
      // Back to one dot per message once the rate falls (the next row decides).
      if (state.recent.length <= PULSE_ABOVE_PER_S) {
        graphMode.textContent = "each message is drawn along its route";
        if (state.graph) state.graph.pulse({});
      }
    }, 1000);
  }

  // --- presenter mode and shortcuts -------------------------------------------------------------------

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen().catch(() => {});
  }

  function togglePresenter() {
    const on = document.documentElement.classList.toggle("presenter");
    root.querySelector('[data-action="presenter"]').setAttribute("aria-pressed", String(on));
    if (on && !document.fullscreenElement) toggleFullscreen();
    if (!on && document.fullscreenElement) toggleFullscreen();
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.closest && event.target.closest("input, textarea, select");
    if (typing) return;
    if (event.key === " ") {
      event.preventDefault();
      togglePause();
    } else if (event.key === "f") {
      event.preventDefault();
      toggleFullscreen();
    } else if (event.key === "/" && form) {
      event.preventDefault();
      form.querySelector("[data-filter-focus]").focus();
    } else if (event.key === "Escape") {
      closeDetails();
    }
  });
})();
