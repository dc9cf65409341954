// The live page: what htmx's ws extension does not do on its own.
// Rows arrive as server-rendered HTML (escaped by Django); this script only moves, counts and
// removes them, and writes text with textContent. It keeps the feed bounded, pauses the view
// (not the tap), exports the rows, opens details, animates the graph, reconnects with new
// filters, folds the notices into the status chip, and runs presenter mode (slow motion, and
// on a scenario page steps: its step form publishes one message per press of →). The
// audience page (`/watch/<token>/`) has no filters, no details and no presenter mode.
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
  // One dot per message up to this many messages a second (at normal speed; a dot lasts a
  // hop, HOP_MS in graph.js, >= 600 ms): above it, edges pulse with the rate instead.
  const DOTS_UP_TO_PER_S = 20;
  const RATE_WINDOW_MS = 2000; // long enough that the tap's batching does not make bursts
  const SLOW_MOTION = 0.25;

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
    // Arrival times of publish and of deliver rows in the last RATE_WINDOW_MS.
    recent: { publish: [], deliver: [] },
    pulseCounts: new Map(),
    pulseTimer: null,
    speed: 1,
    theme: null, // presenter mode's "light" or "dark"; null: the system's
    leavingFullscreen: false,
    feedHiddenToFit: false,
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
      else if (name === "status-chip") toggleChip();
      else if (name === "step") step();
      else if (name === "slow") toggleSlow();
      else if (name === "feed") toggleFeed();
      else if (name === "contrast") toggleContrast();
      else return;
      event.preventDefault();
      return;
    }
    if (event.target.closest(".status-chip-head")) {
      toggleChip();
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
        graph.setSpeed(state.speed);
        applyLook();
        // Reachable from the console (and from the browser tests) to see what is drawn.
        window.flowsLiveGraph = graph;
        graphMode.textContent = graphModeText();
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
    noteArrival(route.kind === "deliver" ? "deliver" : "publish");
    root.dataset.messageRate = String(messageRate()); // what the switch below reads
    if (tooFastForDots()) {
      // Too many to follow one by one: count per edge and let edges pulse with the rate.
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

  // Messages a second over the sliding window: publishes, or deliveries where only those show
  // (a filter, say). A message's deliveries follow it and are not counted again.
  function noteArrival(kind) {
    const now = performance.now();
    state.recent[kind].push(now);
    for (const times of Object.values(state.recent)) {
      while (times.length && now - times[0] > RATE_WINDOW_MS) times.shift();
    }
  }

  function messageRate() {
    const count = state.recent.publish.length || state.recent.deliver.length;
    return (count * 1000) / RATE_WINDOW_MS;
  }

  // Slow motion keeps each dot four times longer: the switch comes four times sooner.
  function dotsUpToPerS() {
    return DOTS_UP_TO_PER_S * state.speed;
  }

  function tooFastForDots() {
    return messageRate() > dotsUpToPerS();
  }

  function countForPulse(route) {
    // Deliveries have no edge key in the graph's contract: only binding edges pulse.
    const keys = (route.hops || []).map((hop) => state.graph.edgeKey(hop)).filter(Boolean);
    for (const key of keys) state.pulseCounts.set(key, (state.pulseCounts.get(key) || 0) + 1);
    if (state.pulseTimer) return;
    graphMode.textContent = `over ${dotsUpToPerS()} msg/s: edges pulse with the rate`;
    root.classList.add("is-pulsing");
    state.pulseTimer = setTimeout(() => {
      const rates = Object.fromEntries(state.pulseCounts);
      state.pulseCounts.clear();
      state.pulseTimer = null;
      if (state.graph) state.graph.pulse(rates);
      // Back to one dot per message once the rate falls (the next row decides).
      if (!tooFastForDots()) {
        graphMode.textContent = graphModeText();
        root.classList.remove("is-pulsing");
        if (state.graph) state.graph.pulse({});
      }
    }, 1000);
  }

  // --- the status chip: the tap's notices and the page's, folded behind one count -------------------

  const chip = document.getElementById("live-status-chip");
  const chipPanel = document.getElementById("live-notices-panel");
  const chipToggle = root.querySelector('[data-action="status-chip"]');

  function updateChip() {
    const count = chipPanel.querySelectorAll("[data-notice]").length;
    const errors = chipPanel.querySelectorAll('[data-notice="error"]').length;
    chipToggle.textContent = count === 0 ? "no notices" : `${count} notice${count === 1 ? "" : "s"}`;
    chip.classList.toggle("has-notices", count > 0);
    chip.classList.toggle("has-errors", errors > 0);
  }

  function toggleChip(open) {
    const on = typeof open === "boolean" ? open : !chip.classList.contains("is-open");
    chip.classList.toggle("is-open", on);
    chipToggle.setAttribute("aria-expanded", String(on));
  }

  // The tap's notices are swapped in by the websocket (out of band): count them each time.
  new MutationObserver(updateChip).observe(chipPanel, { childList: true, subtree: true });
  updateChip();

  // --- presenter mode: slow motion, steps, the feed, light or dark ------------------------------------

  const presenterButton = root.querySelector('[data-action="presenter"]');
  const slowButton = root.querySelector('[data-action="slow"]');
  const feedButton = root.querySelector('[data-action="feed"]');
  const contrastButton = root.querySelector('[data-action="contrast"]');
  const html = document.documentElement;
  const darkScheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  // A scenario page's run controls hold the step form (templates/flows/demo/_controls.html).
  const stepForm = () => document.querySelector("form[data-step-form]");
  root.classList.toggle("can-step", Boolean(stepForm()));

  const presenterOn = () => html.classList.contains("presenter");

  function graphModeText() {
    const slow = state.speed < 1 ? ` (slow motion: ${state.speed}×)` : "";
    return `each message is drawn along its route${slow}`;
  }

  function presenterTheme() {
    if (state.theme) return state.theme;
    return darkScheme && darkScheme.matches ? "dark" : "light";
  }

  function applyLook() {
    const on = presenterOn();
    const theme = presenterTheme();
    html.classList.toggle("presenter-dark", on && theme === "dark");
    html.classList.toggle("presenter-light", on && theme === "light");
    if (contrastButton) contrastButton.textContent = theme === "dark" ? "Light" : "Dark"; // what a press switches to
    if (!state.graph) return;
    state.graph.setLook({ presenter: on, theme: theme });
    if (on && !root.classList.contains("feed-hidden") && state.graph.overflows()) {
      // Labels stay readable: rather than zoom out, give the graph the feed's column.
      toggleFeed();
      state.feedHiddenToFit = true;
      graphMode.textContent = "the feed is hidden so that the graph fits: Feed shows it";
    } else if (!on && state.feedHiddenToFit) {
      toggleFeed();
    }
  }
  if (darkScheme) darkScheme.addEventListener("change", applyLook);
  applyLook();

  function toggleFullscreen() {
    if (document.fullscreenElement) {
      state.leavingFullscreen = true;
      document.exitFullscreen().catch(() => {
        state.leavingFullscreen = false;
      });
    } else {
      document.documentElement.requestFullscreen().catch(() => {});
    }
  }

  function setPresenter(on) {
    html.classList.toggle("presenter", on);
    presenterButton?.setAttribute("aria-pressed", String(on));
    if (!on) toggleChip(false);
    applyLook();
    if (on && !document.fullscreenElement) toggleFullscreen();
    if (!on && document.fullscreenElement) toggleFullscreen();
  }

  function togglePresenter() {
    setPresenter(!presenterOn());
  }

  // Leaving full screen by the browser's own Esc leaves presenter mode too; `f` does not.
  document.addEventListener("fullscreenchange", () => {
    const purposely = state.leavingFullscreen;
    state.leavingFullscreen = false;
    if (!document.fullscreenElement && !purposely && presenterOn()) setPresenter(false);
  });

  function toggleSlow() {
    state.speed = state.speed === 1 ? SLOW_MOTION : 1;
    root.classList.toggle("is-slow", state.speed < 1);
    slowButton?.setAttribute("aria-pressed", String(state.speed < 1));
    if (state.graph) state.graph.setSpeed(state.speed);
    if (!state.pulseTimer) graphMode.textContent = graphModeText();
  }

  function toggleFeed() {
    state.feedHiddenToFit = false;
    const hidden = root.classList.toggle("feed-hidden");
    feedButton?.setAttribute("aria-pressed", String(!hidden));
  }

  function toggleContrast() {
    state.theme = presenterTheme() === "dark" ? "light" : "dark";
    applyLook();
  }

  // One message from the scenario's publisher: the server holds the others (rate 0) and
  // publishes the next one; the feed and the graph show it as any other.
  function step() {
    const form = stepForm();
    if (!form) return;
    const button = form.querySelector('button[type="submit"]');
    if (button && button.disabled) {
      graphMode.textContent = "no step: your account may not publish";
      return;
    }
    // A step form htmx has just swapped in is processed only once its swap settles (20 ms
    // later): a key pressed meanwhile would submit it natively (a GET navigation that
    // reloads the page). Processing it now is harmless when htmx already has.
    if (window.htmx) window.htmx.process(form);
    form.requestSubmit(button || undefined);
  }

  // --- shortcuts --------------------------------------------------------------------------------------

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
    if (typing) return;
    if (event.key === " ") {
      event.preventDefault();
      togglePause();
    } else if (event.key === "f") {
      event.preventDefault();
      toggleFullscreen();
    } else if (event.key === "s") {
      event.preventDefault();
      toggleSlow();
    } else if (event.key === "t" && presenterOn()) {
      event.preventDefault();
      toggleContrast();
    } else if (event.key === "ArrowRight" && stepForm()) {
      event.preventDefault();
      step();
    } else if (event.key === "/" && form) {
      event.preventDefault();
      form.querySelector("[data-filter-focus]").focus();
    } else if (event.key === "Escape") {
      // The innermost thing first: details, then the open chip, then presenter mode.
      if (!details.hidden) closeDetails();
      else if (chip.classList.contains("is-open")) toggleChip(false);
      else if (presenterOn()) setPresenter(false);
    }
  });
})();
