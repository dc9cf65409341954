// The topology graph of one vhost: cytoscape.js with a layered dagre layout, kept in
// step with /api/topology by diffing elements (never rebuilding), so zoom, pan and
// selection survive every refresh.
//
// The graph's interface, used by the topology page and the live page (static/flows/live.js):
//   window.flowsGraph.mount(container, {vhost, apiUrl}) -> Promise<graph>
//   graph.animateRoute({exchange, hops: [{source, destination, destination_type, routing_key}], unroutable})
//   graph.animateDelivery({queue, consumer_tag})
//   graph.pulse({edgeKey: rate})
// Node ids: "exchange:<name>", "queue:<name>", "consumer:<channel>:<tag>" where <channel>
// is the management API's channel name ("127.0.0.1:5555 -> 127.0.0.1:5672 (1)").
// Edge ids (the keys of pulse()): "binding:" + JSON [source, destination_type, destination,
// properties_key], "alternate:<exchange>", "dead-letter:<queue>", "consumes:<consumer id>";
// graph.edgeKey({source, destination, destination_type, routing_key}) finds a binding's id.
// Presenter mode: graph.setLook({presenter, theme: "light"|"dark"}) draws every label at
// PRESENTER_LABEL_PX in the graph's units and never zooms out below 1, so a label is never
// smaller than that on screen (the container's data-min-label-px says how small the smallest
// is); graph.setSpeed(0.25) slows every animation (graph.hopMs: one hop's duration).
// Also on the graph: on("select"|"data"|"status"|"scope", fn), focus(id), clearFocus(),
// setFilter(text), setOptions({showBuiltin, showDashboard}), showRoute(apiRouteJson),
// clearRoute(), details(id), search(text), select(id), refresh(), fit(), destroy().
// Beside mount, for the pages' own text: flowsGraph.exchangeTitle(name) (the default
// exchange's one label).
//
// Names are untrusted: they reach the screen only as cytoscape data (drawn on a canvas)
// or through textContent, never as HTML; elements are looked up with getElementById,
// never with a selector built from a name.
(function () {
  "use strict";

  const DEFAULTS = {
    refreshMs: 3000,
    nodeLimit: 300, // above this, ask to search or focus instead of drawing everything
    collapseAt: 40, // a focused node shows at most this many neighbours until expanded
    showBuiltin: false, // amq.* exchanges and the default exchange
    showDashboard: false, // the dashboard's own flows-dashboard.* objects
  };
  const MAX_DOTS = 150; // concurrent animation dots; beyond this, animations are skipped
  // One hop of a dot, at normal speed: a dot stays in sight at least this long (live.js
  // switches to pulsing edges when messages come too fast for that).
  const HOP_MS = 700;
  const FLASH_MS = 700;
  const LABEL_PX = 13; // node labels, normal mode; sizeFor() measures at this size
  const PRESENTER_LABEL_PX = 24; // every label in presenter mode, at zoom >= 1
  const PRESENTER_MIN_ZOOM = 1;
  const PRESENTER_MAX_ZOOM = 2;
  const PRESENTER_MIN_GAP = 60; // between two columns no label crosses

  // The default exchange has no name; wherever a name is shown, this stands for it.
  const DEFAULT_EXCHANGE_LABEL = "(default exchange)";
  const exchangeTitle = (name) => (name === "" ? DEFAULT_EXCHANGE_LABEL : name);
  const ackMode = (consumer) => (consumer.ack_required ? "manual ack" : "auto-ack");

  const nodeId = {
    exchange: (name) => "exchange:" + name,
    queue: (name) => "queue:" + name,
    consumer: (consumer) => "consumer:" + consumer.channel + ":" + consumer.consumer_tag,
  };

  // --- the model: the API's answer as nodes and edges, all of them ---------------------------

  function shortArgs(args) {
    return Object.keys(args || {})
      .sort()
      .map((key) => key + "=" + (typeof args[key] === "string" ? args[key] : JSON.stringify(args[key])))
      .join(" ");
  }

  function bindingLabel(binding, exchangeType) {
    if (exchangeType === "headers") return shortArgs(binding.arguments) || "(all)";
    if (exchangeType === "fanout") return "";
    return binding.routing_key === "" ? '""' : binding.routing_key;
  }

  function count(value) {
    return value === null || value === undefined ? "?" : String(value);
  }

  function sizeFor(label) {
    // Node boxes sized from the label: cytoscape's width:"label" is deprecated.
    const lines = label.split("\n");
    let rows = 0;
    let widest = 0;
    for (const line of lines) {
      widest = Math.max(widest, Math.min(line.length, 26));
      rows += Math.max(1, Math.ceil(line.length / 26));
    }
    return { w: Math.max(70, 22 + widest * 7.6), h: Math.max(34, 14 + rows * 17) };
  }

  function buildModel(data) {
    const nodes = new Map();
    const edges = new Map();
    const adjacency = new Map(); // node id -> Set of edge ids
    const exchanges = new Map();
    const queues = new Map();
    const consumersByQueue = new Map();

    function addNode(id, kind, name, label, record, flags) {
      // Sized from what cannot change between refreshes, so a queue's depth ticking
      // up never resizes a node (which would call for a new layout).
      const size = sizeFor(flags.sizing || label);
      nodes.set(id, {
        id: id,
        kind: kind,
        name: name,
        label: label,
        w: size.w,
        h: size.h,
        hidden: flags.hidden || null,
        record: record,
      });
      adjacency.set(id, adjacency.get(id) || new Set());
    }

    function addEdge(id, kind, source, target, label, record) {
      if (!nodes.has(target)) {
        // A dead-letter or alternate exchange that does not exist: worth seeing.
        const name = target.slice(target.indexOf(":") + 1);
        addNode(target, "missing", name, exchangeTitle(name) + "\n(does not exist)", null, {});
      }
      edges.set(id, { id: id, kind: kind, source: source, target: target, label: label, record: record });
      adjacency.get(source).add(id);
      adjacency.get(target).add(id);
    }

    for (const exchange of data.exchanges) {
      exchanges.set(exchange.name, exchange);
      const title = exchange.is_default ? DEFAULT_EXCHANGE_LABEL : exchange.name;
      const hidden = exchange.builtin ? "builtin" : exchange.dashboard ? "dashboard" : null;
      addNode(nodeId.exchange(exchange.name), "exchange", exchange.name, title + "\n" + exchange.type, exchange, {
        hidden: hidden,
      });
    }
    for (const queue of data.queues) {
      queues.set(queue.name, queue);
      // Depths come from statistics, which a new queue lacks for a few seconds.
      const known = queue.messages_ready !== null && queue.messages_ready !== undefined;
      const depth = known ? "\nready " + count(queue.messages_ready) + " · unacked " + count(queue.messages_unacknowledged) : "";
      addNode(nodeId.queue(queue.name), "queue", queue.name, queue.name + depth, queue, {
        hidden: queue.dashboard ? "dashboard" : null,
        sizing: queue.name + "\nready 0000 · unacked 0000",
      });
    }
    for (const consumer of data.consumers) {
      if (!queues.has(consumer.queue)) continue;
      const list = consumersByQueue.get(consumer.queue) || [];
      list.push(consumer);
      consumersByQueue.set(consumer.queue, list);
      // The client's name for its connection when it gave one (`label`), else the tag.
      const name = consumer.label || consumer.consumer_tag;
      const label = name + "\nprefetch " + count(consumer.prefetch_count) + " · " + ackMode(consumer);
      addNode(nodeId.consumer(consumer), "consumer", name, label, consumer, {
        sizing: name + "\nprefetch 0000 · manual ack",
        hidden: queues.get(consumer.queue).dashboard ? "dashboard" : null,
      });
    }

    for (const binding of data.bindings) {
      const source = nodeId.exchange(binding.source);
      if (!nodes.has(source)) continue;
      const target =
        binding.destination_type === "exchange" ? nodeId.exchange(binding.destination) : nodeId.queue(binding.destination);
      const sourceType = (exchanges.get(binding.source) || {}).type;
      const id =
        "binding:" + JSON.stringify([binding.source, binding.destination_type, binding.destination, binding.properties_key]);
      const kind = binding.destination_type === "exchange" ? "e2e" : "binding";
      addEdge(id, kind, source, target, bindingLabel(binding, sourceType), binding);
    }
    for (const exchange of data.exchanges) {
      if (exchange.alternate_exchange === null || exchange.alternate_exchange === undefined) continue;
      addEdge(
        "alternate:" + exchange.name,
        "alternate",
        nodeId.exchange(exchange.name),
        nodeId.exchange(exchange.alternate_exchange),
        "alternate",
        exchange,
      );
    }
    for (const queue of data.queues) {
      if (queue.dead_letter_exchange === null || queue.dead_letter_exchange === undefined) continue;
      const key = queue.dead_letter_routing_key;
      addEdge(
        "dead-letter:" + queue.name,
        "dead-letter",
        nodeId.queue(queue.name),
        nodeId.exchange(queue.dead_letter_exchange),
        key ? "dead letters → " + key : "dead letters",
        queue,
      );
    }
    for (const [queueName, consumers] of consumersByQueue) {
      for (const consumer of consumers) {
        const id = nodeId.consumer(consumer);
        addEdge("consumes:" + id, "consume", nodeId.queue(queueName), id, "", consumer);
      }
    }
    return {
      data: data,
      nodes: nodes,
      edges: edges,
      adjacency: adjacency,
      exchanges: exchanges,
      queues: queues,
      consumersByQueue: consumersByQueue,
    };
  }

  function otherEnd(edge, id) {
    return edge.source === id ? edge.target : edge.source;
  }

  // --- scope: which part of the model to draw ------------------------------------------------

  function visible(model, node, options) {
    if (node.hidden === "builtin" && !options.showBuiltin) return false;
    if (node.hidden === "dashboard" && !options.showDashboard) return false;
    return true;
  }

  function computeScope(model, state) {
    const options = state.options;
    const shown = (id) => {
      const node = model.nodes.get(id);
      return node !== undefined && visible(model, node, options);
    };
    let ids = new Set();
    const collapsed = new Map(); // "more:" node id -> {of, hidden count}
    let reason = "all";

    if (state.focus !== null && model.nodes.has(state.focus)) {
      reason = "focus";
      ids.add(state.focus);
      const neighbours = [];
      for (const edgeId of model.adjacency.get(state.focus)) {
        const other = otherEnd(model.edges.get(edgeId), state.focus);
        if (shown(other) || model.nodes.get(other).kind === "missing") neighbours.push(other);
      }
      const unique = [...new Set(neighbours)].sort();
      // "+N more" shows another page of neighbours per click, never more than can be drawn.
      const limit = Math.min(state.expanded.get(state.focus) || options.collapseAt, options.nodeLimit - 2);
      for (const other of unique.slice(0, limit)) ids.add(other);
      if (unique.length > limit) {
        collapsed.set("more:" + state.focus, { of: state.focus, count: unique.length - limit });
      }
      // A queue's consumers come along: exchanges → queues → consumers reads best whole.
      for (const id of [...ids]) {
        const node = model.nodes.get(id);
        if (node.kind !== "queue") continue;
        for (const consumer of model.consumersByQueue.get(node.name) || []) {
          if (ids.size < options.nodeLimit) ids.add(nodeId.consumer(consumer));
        }
      }
    } else if (state.filter !== "") {
      reason = "filter";
      const needle = state.filter.toLowerCase();
      for (const node of model.nodes.values()) {
        if (!shown(node.id) || !node.name.toLowerCase().includes(needle)) continue;
        ids.add(node.id);
        for (const edgeId of model.adjacency.get(node.id)) {
          const other = otherEnd(model.edges.get(edgeId), node.id);
          if (shown(other) || model.nodes.get(other).kind === "missing") ids.add(other);
        }
      }
    } else {
      for (const node of model.nodes.values()) {
        if (node.kind === "missing") continue; // only where an edge needs it
        if (shown(node.id)) ids.add(node.id);
      }
    }
    const total = ids.size;
    const tooLarge = total > options.nodeLimit;
    if (tooLarge) {
      // Draw only what must be seen (a dry-run's path) and ask for a search or a focus.
      ids = new Set();
      collapsed.clear();
    }
    for (const id of state.pinned) if (model.nodes.has(id)) ids.add(id);
    const edges = new Set();
    for (const id of ids) {
      for (const edgeId of model.adjacency.get(id)) {
        const edge = model.edges.get(edgeId);
        const other = otherEnd(edge, id);
        if (ids.has(other)) edges.add(edgeId);
        else if (model.nodes.get(other).kind === "missing" && shown(id)) {
          ids.add(other);
          edges.add(edgeId);
        }
      }
    }
    return { tooLarge: tooLarge, reason: reason, count: tooLarge ? total : ids.size, nodes: ids, edges: edges, collapsed: collapsed };
  }

  // --- styles --------------------------------------------------------------------------------

  // The elements' own look; then STATE_STYLE (selection, routes, flashes, dots), which must
  // come after every look that sets the same properties (cytoscape: the last rule wins).
  const BASE_STYLE = [
    {
      selector: "node",
      style: {
        label: "data(label)",
        "text-wrap": "wrap",
        "text-max-width": "190px",
        "text-overflow-wrap": "anywhere",
        "text-valign": "center",
        "text-halign": "center",
        "font-size": 13,
        "font-family": "system-ui, sans-serif",
        color: "#17202a",
        width: "data(w)",
        height: "data(h)",
        "border-width": 2,
        "background-color": "#ffffff",
      },
    },
    { selector: "node.exchange", style: { shape: "round-rectangle", "border-color": "#ff6600", "background-color": "#fff4ec" } },
    { selector: "node.queue", style: { shape: "rectangle", "border-color": "#0b5cad", "background-color": "#eaf2fb" } },
    { selector: "node.consumer", style: { shape: "ellipse", "border-color": "#1a7f37", "background-color": "#e6f6ea", "font-size": 12 } },
    {
      selector: "node.missing",
      style: { shape: "round-rectangle", "border-style": "dashed", "border-color": "#8a94a3", color: "#5b6675", "background-color": "#f6f7f9" },
    },
    {
      selector: "node.more",
      style: { shape: "round-rectangle", "border-style": "dotted", "border-color": "#5b6675", "background-color": "#eef1f5", color: "#5b6675" },
    },
    {
      selector: "edge",
      style: {
        width: "mapData(rate, 0, 1000, 1.6, 12)",
        "curve-style": "bezier",
        "target-arrow-shape": "triangle",
        "line-color": "#8a94a3",
        "target-arrow-color": "#8a94a3",
        label: "data(label)",
        "font-size": 11,
        "font-family": "ui-monospace, monospace",
        color: "#17202a",
        "text-rotation": "autorotate",
        "text-background-color": "#ffffff",
        "text-background-opacity": 0.85,
        "text-background-padding": 2,
      },
    },
    { selector: "edge.e2e", style: { "line-color": "#7c3aed", "target-arrow-color": "#7c3aed", "line-style": "solid" } },
    {
      selector: "edge.alternate",
      style: { "line-color": "#d97706", "target-arrow-color": "#d97706", "line-style": "dashed", "line-dash-pattern": [2, 4], color: "#9a5b00" },
    },
    {
      selector: "edge.dead-letter",
      style: { "line-color": "#c62828", "target-arrow-color": "#c62828", "line-style": "dashed", color: "#8b1a1a", "curve-style": "unbundled-bezier" },
    },
    { selector: "edge.consume", style: { "line-color": "#1a7f37", "target-arrow-color": "#1a7f37", "target-arrow-shape": "vee" } },
    { selector: "edge.more", style: { "line-style": "dotted", "target-arrow-shape": "none" } },
  ];

  const STATE_STYLE = [
    { selector: "node:selected", style: { "border-width": 4, "border-color": "#7c3aed", "overlay-opacity": 0 } },
    { selector: "node.match", style: { "border-width": 4, "border-color": "#d4a20b" } },
    { selector: ".dim", style: { opacity: 0.22 } },
    { selector: "edge.route", style: { "line-color": "#ff6600", "target-arrow-color": "#ff6600", width: 5, opacity: 1, "z-index": 10 } },
    { selector: "node.route", style: { "border-color": "#ff6600", "border-width": 5, opacity: 1 } },
    { selector: "node.unroutable", style: { "background-color": "#fdecea", "border-color": "#c62828", "border-width": 6 } },
    {
      selector: "node.flash-red",
      style: { "background-color": "#f28b82", "border-color": "#c62828", "border-width": 6, "transition-property": "background-color", "transition-duration": 200 },
    },
    { selector: "node.flash", style: { "border-color": "#ff6600", "border-width": 6 } },
    {
      selector: "node.dot",
      style: { width: 14, height: 14, shape: "ellipse", "background-color": "#ff6600", "border-width": 2, "border-color": "#ffffff", label: "", "z-index": 100, events: "no" },
    },
    { selector: "node.dot.deliver", style: { "background-color": "#1a7f37" } },
  ];

  // Presenter mode: large labels (the node boxes grow with them, see labelScale), thick
  // edges and borders, and strong contrast on a light or a dark background.
  function presenterStyles(theme) {
    const dark = theme === "dark";
    const ink = dark ? "#ffffff" : "#000000";
    const paper = dark ? "#000000" : "#ffffff";
    const line = dark ? "#e6e6e6" : "#1a1a1a";
    const px = PRESENTER_LABEL_PX;
    const base = [
      {
        selector: "node",
        style: {
          "font-size": px,
          "text-max-width": Math.round(190 * labelScale(true)) + "px",
          // Boxes are sized for normal labels (sizeFor): grown with the label.
          // (plus a margin: bold glyphs at this size run wider than sizeFor assumes)
          width: (node) => node.data("w") * labelScale(true) + 14,
          height: (node) => node.data("h") * labelScale(true),
          color: ink,
          "border-width": 4,
          "background-color": paper,
          "font-weight": 600,
        },
      },
      { selector: "node.exchange", style: { "border-color": dark ? "#ff8c33" : "#c44d00", "background-color": dark ? "#331500" : "#fff0e3" } },
      { selector: "node.queue", style: { "border-color": dark ? "#7cbcff" : "#003f8f", "background-color": dark ? "#001a3a" : "#e6f0ff" } },
      { selector: "node.consumer", style: { "font-size": px, "border-color": dark ? "#6ff29a" : "#0a5c22", "background-color": dark ? "#002611" : "#e3f7e8" } },
      { selector: "node.missing, node.more", style: { color: ink, "border-color": line, "background-color": paper } },
      {
        selector: "edge",
        style: {
          width: "mapData(rate, 0, 1000, 4, 18)",
          "line-color": line,
          "target-arrow-color": line,
          "arrow-scale": 1.5,
          "font-size": px,
          "font-weight": 600,
          color: ink,
          "text-background-color": paper,
          "text-background-opacity": 1,
          "text-background-padding": 3,
        },
      },
      { selector: "edge.e2e", style: { "line-color": dark ? "#c4a5ff" : "#5b21b6", "target-arrow-color": dark ? "#c4a5ff" : "#5b21b6" } },
      { selector: "edge.alternate", style: { "line-color": dark ? "#ffb340" : "#a34f00", "target-arrow-color": dark ? "#ffb340" : "#a34f00", color: ink } },
      { selector: "edge.dead-letter", style: { "line-color": dark ? "#ff6b6b" : "#a30000", "target-arrow-color": dark ? "#ff6b6b" : "#a30000", color: ink } },
      { selector: "edge.consume", style: { "line-color": dark ? "#6ff29a" : "#0a5c22", "target-arrow-color": dark ? "#6ff29a" : "#0a5c22" } },
    ];
    const state = [
      { selector: "edge.route", style: { width: 10 } },
      { selector: "node.route, node.flash, node.unroutable, node.flash-red", style: { "border-width": 8 } },
      { selector: "node.dot", style: { width: 30, height: 30, "border-width": 4, "border-color": paper } },
    ];
    return { base: base, state: state };
  }

  function stylesheet(look) {
    if (!look.presenter) return BASE_STYLE.concat(STATE_STYLE);
    const extra = presenterStyles(look.theme);
    return BASE_STYLE.concat(extra.base, STATE_STYLE, extra.state);
  }

  // How much larger than normal labels (and the boxes sized for them) are drawn.
  function labelScale(presenter) {
    return presenter ? PRESENTER_LABEL_PX / LABEL_PX : 1;
  }

  // --- drawing: cytoscape holds exactly the scope's elements ---------------------------------

  function nodeElement(node) {
    return {
      group: "nodes",
      data: { id: node.id, kind: node.kind, name: node.name, label: node.label, w: node.w, h: node.h },
      classes: node.kind,
    };
  }

  function edgeElement(edge, rate) {
    return {
      group: "edges",
      data: { id: edge.id, kind: edge.kind, source: edge.source, target: edge.target, label: edge.label, rate: rate || 0 },
      classes: edge.kind,
    };
  }

  function moreElements(id, more) {
    const label = "+" + more.count + " more\n(click to show)";
    const size = sizeFor(label);
    return [
      { group: "nodes", data: { id: id, kind: "more", name: "", label: label, w: size.w, h: size.h, of: more.of }, classes: "more" },
      { group: "edges", data: { id: "edge-" + id, kind: "more", source: more.of, target: id, label: "", rate: 0 }, classes: "more" },
    ];
  }

  // Element id -> the cytoscape element the scope calls for.
  function desiredElements(model, scope, rates) {
    const desired = new Map();
    for (const id of scope.nodes) desired.set(id, nodeElement(model.nodes.get(id)));
    const moreEdges = [];
    for (const [id, more] of scope.collapsed) {
      const [node, edge] = moreElements(id, more);
      desired.set(node.data.id, node);
      moreEdges.push(edge);
    }
    for (const id of scope.edges) desired.set(id, edgeElement(model.edges.get(id), rates[id]));
    for (const edge of moreEdges) desired.set(edge.data.id, edge);
    return desired;
  }

  function signature(element) {
    return JSON.stringify([element.data, element.classes]);
  }

  // Add, update, remove, never rebuild: zoom, pan and selection survive. Animation dots
  // are not the model's and stay. True when elements came or went (a new layout is due).
  function patchElements(cy, desired) {
    let structural = false;
    cy.batch(() => {
      const stale = cy.elements().filter((element) => !element.hasClass("dot") && !desired.has(element.id()));
      if (stale.nonempty()) {
        structural = true;
        cy.remove(stale);
      }
      const additions = [];
      for (const [id, element] of desired) {
        const existing = cy.getElementById(id);
        const sig = signature(element);
        if (existing.empty()) {
          element.data.sig = sig;
          additions.push(element);
        } else if (existing.data("sig") !== sig) {
          element.data.sig = sig;
          existing.data(element.data);
        }
      }
      if (additions.length > 0) {
        structural = true;
        // Nodes first: edges need both ends.
        cy.add(additions.filter((element) => element.group === "nodes"));
        cy.add(additions.filter((element) => element.group === "edges"));
      }
    });
    return structural;
  }

  // What the overlay says over the canvas ("" hides it).
  function scopeMessage(scope, filter) {
    if (scope.tooLarge) {
      return scope.reason === "filter"
        ? scope.count + " objects match this search: too many to draw. Narrow the search, or pick one to focus on."
        : scope.count + " objects in this vhost: too many to draw at once. Search for a name, or pick an object to focus on its neighbourhood.";
    }
    if (scope.count === 0) {
      return filter !== "" ? "Nothing matches this search." : "Nothing to draw: this vhost has no exchanges or queues of its own.";
    }
    return "";
  }

  // --- layout: exchanges → queues → consumers, left to right ---------------------------------

  function runLayout(cy, fit, look) {
    const eles = cy.elements().filter((element) => !element.hasClass("dot") && !element.hasClass("dead-letter"));
    if (eles.empty()) return;
    const presenter = Boolean(look && look.presenter);
    eles
      .layout({
        name: "dagre",
        rankDir: "LR",
        nodeSep: presenter ? 36 : 22,
        rankSep: 120, // presenter mode: compactColumns() decides
        edgeSep: 10,
        fit: false,
        padding: 30,
        animate: false,
      })
      .run();
    moveUnboundQueues(cy);
    if (presenter) compactColumns(cy, eles);
    if (fit) fitAll(cy, look);
  }

  function fitAll(cy, look) {
    cy.fit(cy.elements().not(".dot"), look && look.presenter ? 16 : 30);
  }

  // Presenter mode: dagre leaves one gap between every two columns, wide enough for the
  // longest label anywhere; every pixel spent on gaps shrinks the labels on screen. Each gap
  // is made just wide enough for the labels of the edges that cross it (a monospace glyph is
  // about 0.6 em), and narrow where none does (consumers, fanout bindings).
  function compactColumns(cy, eles) {
    const nodes = eles.nodes();
    if (nodes.empty()) return;
    const columns = []; // [{x, half, nodes}] by x, as dagre left them (one x per rank)
    nodes.forEach((node) => {
      const x = node.position("x");
      let column = columns.find((item) => Math.abs(item.x - x) < 1);
      if (!column) {
        column = { x: x, half: 0, nodes: [] };
        columns.push(column);
      }
      column.half = Math.max(column.half, node.width() / 2);
      column.nodes.push(node);
    });
    columns.sort((a, b) => a.x - b.x);
    const indexOf = new Map();
    columns.forEach((column, index) => column.nodes.forEach((node) => indexOf.set(node.id(), index)));
    const gaps = columns.map(() => PRESENTER_MIN_GAP);
    eles.edges().forEach((edge) => {
      const from = indexOf.get(edge.source().id());
      const to = indexOf.get(edge.target().id());
      const label = String(edge.data("label") || "");
      if (from === undefined || to === undefined || from === to || label === "") return;
      const width = Math.max(...label.split("\n").map((line) => line.length)) * PRESENTER_LABEL_PX * 0.6 + 40;
      const [low, high] = from < to ? [from, to] : [to, from];
      for (let gap = low; gap < high; gap += 1) gaps[gap] = Math.max(gaps[gap], width / (high - low));
    });
    let right = columns[0].x + columns[0].half;
    for (let index = 1; index < columns.length; index += 1) {
      const column = columns[index];
      const x = right + gaps[index - 1] + column.half;
      for (const node of column.nodes) node.shift({ x: x - column.x, y: 0 });
      column.x = x;
      right = x + column.half;
    }
  }

  // The smallest label on screen, in CSS pixels (cytoscape scales font-size by the zoom).
  function smallestLabelPx(cy) {
    let smallest = Infinity;
    cy.elements().forEach((element) => {
      if (element.hasClass("dot") || !element.data("label")) return;
      smallest = Math.min(smallest, element.numericStyle("font-size") * cy.zoom());
    });
    return smallest === Infinity ? null : smallest;
  }

  // dagre puts a queue nothing is bound to (fed through the default exchange only) in
  // the first column, among the exchanges. Move it, and its consumers, to the queue
  // column, below the queues already there, so the layers read exchanges → queues →
  // consumers.
  function moveUnboundQueues(cy) {
    const queues = cy.nodes(".queue");
    const fed = (queue) => queue.incomers("edge").filter((edge) => !edge.hasClass("dead-letter")).nonempty();
    const bound = queues.filter(fed);
    const unbound = queues.filter((queue) => !fed(queue));
    if (unbound.empty()) return;
    const exchanges = cy.nodes(".exchange, .missing");
    let column;
    if (bound.nonempty()) {
      const xs = bound.map((queue) => queue.position("x")).sort((a, b) => a - b);
      column = xs[Math.floor(xs.length / 2)];
    } else if (exchanges.nonempty()) {
      column = Math.max(...exchanges.map((node) => node.position("x") + node.width() / 2)) + 120 + 100;
    } else {
      return;
    }
    const sameColumn = bound.filter((queue) => Math.abs(queue.position("x") - column) < 1);
    let y = sameColumn.nonempty() ? Math.max(...sameColumn.map((queue) => queue.position("y") + queue.height() / 2)) + 22 : null;
    unbound.sort((a, b) => a.position("y") - b.position("y")).forEach((queue) => {
      const dx = column - queue.position("x");
      const dy = y === null ? 0 : y + queue.height() / 2 - queue.position("y");
      queue.shift({ x: dx, y: dy });
      queue.outgoers("node.consumer").shift({ x: dx, y: dy });
      if (y !== null) y += queue.height() + 22;
    });
  }

  // --- routes: a dry-run's or a message's hops on the drawn graph ----------------------------

  function hopTarget(hop) {
    return hop.destination_type === "exchange" ? nodeId.exchange(hop.destination) : nodeId.queue(hop.destination);
  }

  function hopEdges(cy, model, hop) {
    const source = cy.getElementById(nodeId.exchange(hop.source));
    const target = hopTarget(hop);
    const kind = hop.kind === "alternate-exchange" ? "alternate" : null;
    const between = source.edgesTo(cy.getElementById(target)).filter((edge) =>
      kind !== null ? edge.data("kind") === kind : edge.data("kind") !== "alternate",
    );
    // Several bindings may join the same pair: prefer the one with the hop's key.
    const keyed = between.filter((edge) => {
      const binding = model.edges.get(edge.id());
      return binding !== undefined && binding.record !== null && binding.record.routing_key === hop.routing_key;
    });
    return keyed.nonempty() ? keyed : between;
  }

  // The nodes a route must show even outside the current scope.
  function routePins(route) {
    const pinned = new Set();
    if (!route) return pinned;
    pinned.add(nodeId.exchange(route.exchange));
    for (const hop of route.hops || []) {
      pinned.add(nodeId.exchange(hop.source));
      pinned.add(hopTarget(hop));
    }
    return pinned;
  }

  // Search matches outlined; a shown route lit, the rest dimmed.
  function applyHighlights(cy, model, filter, route) {
    cy.batch(() => {
      cy.elements().removeClass("route dim unroutable match");
      if (filter !== "") {
        const needle = filter.toLowerCase();
        cy.nodes().forEach((node) => {
          const name = node.data("name");
          if (typeof name === "string" && name !== "" && name.toLowerCase().includes(needle)) node.addClass("match");
        });
      }
      if (route === null) return;
      const lit = cy.collection();
      lit.merge(cy.getElementById(nodeId.exchange(route.exchange)));
      for (const hop of route.hops || []) {
        lit.merge(hopEdges(cy, model, hop));
        lit.merge(cy.getElementById(hopTarget(hop)));
        lit.merge(cy.getElementById(nodeId.exchange(hop.source)));
      }
      cy.elements().not(lit).not(".dot").addClass("dim");
      lit.addClass("route");
      if (route.unroutable) cy.getElementById(nodeId.exchange(route.exchange)).addClass("unroutable");
    });
  }

  // --- animation: dots travelling along a message's route ------------------------------------

  // `speed()`: 1 normally, 0.25 in slow motion; every duration is divided by it.
  function Animator(cy, currentModel, speed) {
    let dots = 0;
    let dotSeq = 0;
    const hopMs = () => HOP_MS / speed();

    function flash(id, className) {
      const node = cy.getElementById(id);
      if (node.empty()) return;
      node.addClass(className);
      window.setTimeout(() => node.removeClass(className), FLASH_MS / speed());
    }

    function travel(fromId, toId, delay, extraClass) {
      const from = cy.getElementById(fromId);
      const to = cy.getElementById(toId);
      if (from.empty() || to.empty() || dots >= MAX_DOTS) return false;
      dots += 1;
      dotSeq += 1;
      const start = from.position();
      const dot = cy.add({
        group: "nodes",
        data: { id: "dot:" + dotSeq },
        classes: "dot" + (extraClass ? " " + extraClass : ""),
        position: { x: start.x, y: start.y },
        selectable: false,
        grabbable: false,
      });
      const end = to.position();
      const done = () => {
        dots -= 1;
        if (!dot.removed()) dot.remove();
        flash(toId, "flash");
      };
      dot.animate({ position: { x: end.x, y: end.y } }, { duration: hopMs(), delay: delay, complete: done });
      return true;
    }

    function animateRoute(route) {
      if (!route) return;
      const start = nodeId.exchange(route.exchange || "");
      if (route.unroutable || !route.hops || route.hops.length === 0) {
        flash(start, "flash-red");
        return;
      }
      // Each exchange forwards when the dot reaches it: the delay grows with the depth.
      const depth = new Map([[route.exchange || "", 0]]);
      const pending = route.hops.slice();
      for (let guard = 0; pending.length > 0 && guard < 64; guard += 1) {
        for (let index = 0; index < pending.length; ) {
          const hop = pending[index];
          if (!depth.has(hop.source)) {
            index += 1;
            continue;
          }
          const level = depth.get(hop.source);
          const target = hopTarget(hop);
          const source = nodeId.exchange(hop.source);
          if (!travel(source, target, level * hopMs(), null)) flash(target, "flash");
          if (hop.destination_type === "exchange" && !depth.has(hop.destination)) depth.set(hop.destination, level + 1);
          pending.splice(index, 1);
        }
        if (pending.every((hop) => !depth.has(hop.source))) break;
      }
    }

    function consumerNodeId(queue, consumerTag) {
      const model = currentModel();
      const consumers = model ? model.consumersByQueue.get(queue) || [] : [];
      const consumer = consumers.find((item) => item.consumer_tag === consumerTag);
      return consumer ? nodeId.consumer(consumer) : null;
    }

    function animateDelivery(delivery) {
      if (!delivery) return;
      const queue = nodeId.queue(delivery.queue);
      const consumer = consumerNodeId(delivery.queue, delivery.consumer_tag);
      if (consumer === null || !travel(queue, consumer, 0, "deliver")) flash(queue, "flash");
    }

    return { animateRoute: animateRoute, animateDelivery: animateDelivery, hopMs: hopMs };
  }

  // --- pulses: edge width from a message rate ------------------------------------------------

  function applyRates(cy, rates) {
    cy.batch(() => {
      cy.edges().forEach((edge) => {
        const rate = rates[edge.id()] || 0;
        if (edge.data("rate") !== rate) edge.data("rate", rate);
      });
    });
  }

  // --- details and search: plain reads of the model ------------------------------------------

  function nodeDetails(model, id) {
    if (model === null || !model.nodes.has(id)) return null;
    const node = model.nodes.get(id);
    const outgoing = [];
    const incoming = [];
    for (const edgeId of model.adjacency.get(id)) {
      const edge = model.edges.get(edgeId);
      const entry = { id: edge.id, kind: edge.kind, label: edge.label, record: edge.record, source: edge.source, target: edge.target };
      if (edge.source === id) outgoing.push(entry);
      else incoming.push(entry);
    }
    const consumers = node.kind === "queue" ? model.consumersByQueue.get(node.name) || [] : [];
    return { id: id, kind: node.kind, name: node.name, record: node.record, outgoing: outgoing, incoming: incoming, consumers: consumers };
  }

  function searchNodes(model, options, text, limit) {
    const needle = (text || "").toLowerCase();
    if (model === null || needle === "") return [];
    const hits = [];
    for (const node of model.nodes.values()) {
      if (node.kind === "missing" || !visible(model, node, options)) continue;
      if (node.name.toLowerCase().includes(needle)) {
        hits.push({ id: node.id, kind: node.kind, name: node.name });
        if (hits.length >= (limit || 50)) break;
      }
    }
    return hits;
  }

  // Select a node, bringing it into view only if it is out of view: panning on every click
  // disorients.
  function selectNode(cy, id) {
    const node = cy.getElementById(id);
    cy.$("node:selected").unselect();
    if (node.empty()) return;
    node.select();
    const box = node.renderedBoundingBox();
    if (box.x1 < 0 || box.y1 < 0 || box.x2 > cy.width() || box.y2 > cy.height()) {
      cy.animate({ center: { eles: node } }, { duration: 250 });
    }
  }

  // --- reading /api/topology -----------------------------------------------------------------

  // One read: {ok: true, body|null (unchanged), etag} or {ok: false, message}.
  async function fetchTopology(url, etag) {
    const headers = { Accept: "application/json" };
    if (etag) headers["If-None-Match"] = etag;
    let response;
    try {
      response = await fetch(url, { credentials: "same-origin", cache: "no-store", headers: headers });
    } catch (error) {
      return { ok: false, message: "The dashboard does not answer (" + error.message + "). Showing the last topology read." };
    }
    if (response.status === 304) return { ok: true, body: null, etag: etag };
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok || body === null) {
      const message = body && typeof body.error === "string" ? body.error : "The topology could not be read (HTTP " + response.status + ").";
      return { ok: false, message: message };
    }
    return { ok: true, body: body, etag: response.headers.get("ETag") };
  }

  function topologyUrl(options) {
    const separator = options.apiUrl.includes("?") ? "&" : "?";
    return options.apiUrl + separator + "vhost=" + encodeURIComponent(options.vhost);
  }

  // --- the page around the canvas ------------------------------------------------------------

  function Emitter() {
    const handlers = new Map();
    return {
      on(name, handler) {
        if (!handlers.has(name)) handlers.set(name, []);
        handlers.get(name).push(handler);
      },
      emit(name, value) {
        for (const handler of handlers.get(name) || []) {
          try {
            handler(value);
          } catch (error) {
            console.error("flowsGraph handler for", name, "failed:", error);
          }
        }
      },
    };
  }

  // The canvas cytoscape draws on, and the overlay that speaks over it.
  function buildView(container) {
    const canvas = document.createElement("div");
    canvas.className = "flows-graph-canvas";
    const overlay = document.createElement("div");
    overlay.className = "flows-graph-overlay";
    overlay.hidden = true;
    overlay.setAttribute("role", "status");
    container.replaceChildren(canvas, overlay);
    return {
      canvas: canvas,
      showOverlay(text) {
        overlay.textContent = text;
        overlay.hidden = text === "";
      },
      setStale(stale) {
        container.classList.toggle("is-stale", stale);
      },
    };
  }

  // Cytoscape adds a <style> element of its own unless one with this id exists; the
  // Content-Security-Policy refuses inline styles, so a placeholder stands in for it. What
  // that style says (its container is not position: static) the stylesheets say already.
  const CYTOSCAPE_STYLESHEET_ID = "__________cytoscape_stylesheet";

  function createCytoscape(canvas) {
    if (!document.getElementById(CYTOSCAPE_STYLESHEET_ID)) {
      const placeholder = document.createElement("meta");
      placeholder.id = CYTOSCAPE_STYLESHEET_ID;
      document.head.append(placeholder);
    }
    return window.cytoscape({
      container: canvas,
      elements: [],
      style: stylesheet({ presenter: false }),
      minZoom: 0.05,
      maxZoom: 2.5,
      boxSelectionEnabled: false,
      selectionType: "single",
    });
  }

  // What a person does on the canvas, as calls to `on`.
  function bindInteraction(cy, on) {
    cy.on("select", "node", (event) => {
      if (!event.target.hasClass("dot")) on.selected(event.target.id());
    });
    cy.on("unselect", "node", () => {
      // After cytoscape settles: selecting another node unselects this one first.
      window.setTimeout(() => {
        if (cy.$("node:selected").empty()) on.unselected();
      }, 0);
    });
    cy.on("scrollzoom pinchzoom dragpan", () => on.viewportMoved());
    cy.on("dbltap", (event) => {
      if (event.target === cy) on.backgroundDoubleTapped();
    });
    cy.on("tap", "node.more", (event) => on.moreTapped(event.target.data("of")));
  }

  // --- mount: the parts above, wired to one vhost's topology ---------------------------------

  function mount(container, config) {
    if (typeof window.cytoscape !== "function") {
      return Promise.reject(new Error("cytoscape.js is not loaded"));
    }
    const options = Object.assign({}, DEFAULTS, config || {});
    const emitter = Emitter();
    const view = buildView(container);
    const cy = createCytoscape(view.canvas);
    const state = {
      options: options,
      model: null,
      etag: null,
      focus: null,
      filter: "",
      expanded: new Map(), // focused node id -> how many neighbours to show
      pinned: new Set(),
      route: null, // the dry-run shown on the graph
      rates: {},
      scope: null,
      selectedId: null,
      userMovedViewport: false,
      timer: null,
      destroyed: false,
      status: { ok: true, message: "" },
      inFlight: null,
      lastFetchMs: 0,
      look: { presenter: false, theme: "light" },
      speed: 1,
    };
    const animator = Animator(cy, () => state.model, () => state.speed);

    // The smallest label on screen, kept on the container for pages and tests to read.
    let labelFrame = 0;
    function noteLabelSize() {
      if (labelFrame) return;
      labelFrame = window.requestAnimationFrame(() => {
        labelFrame = 0;
        const px = smallestLabelPx(cy);
        container.dataset.minLabelPx = px === null ? "" : px.toFixed(1);
      });
    }
    cy.on("zoom", noteLabelSize);

    // The page may resize the canvas (presenter mode, the feed shown or hidden): follow it,
    // fitted again unless the viewer moved the view.
    let resizeFrame = 0;
    const resizes = new ResizeObserver(() => {
      if (resizeFrame) return;
      resizeFrame = window.requestAnimationFrame(() => {
        resizeFrame = 0;
        if (state.destroyed) return;
        cy.resize();
        if (!state.userMovedViewport) fitAll(cy, state.look);
        noteLabelSize();
      });
    });
    resizes.observe(container);

    function setStatus(ok, message) {
      const changed = state.status.ok !== ok || state.status.message !== message;
      state.status = { ok: ok, message: message };
      view.setStale(!ok);
      if (changed) emitter.emit("status", state.status);
    }

    function sync(fitAfterLayout) {
      const model = state.model;
      if (model === null) return;
      const scope = computeScope(model, state);
      state.scope = scope;
      const structural = patchElements(cy, desiredElements(model, scope, state.rates));
      applyHighlights(cy, model, state.filter, state.route);
      view.showOverlay(scopeMessage(scope, state.filter));
      // Until the user zooms or pans, a changed graph is fitted again; after, never.
      if (structural || fitAfterLayout) runLayout(cy, fitAfterLayout || !state.userMovedViewport, state.look);
      noteLabelSize();
      emitter.emit("scope", { tooLarge: scope.tooLarge, count: scope.count, reason: scope.reason });
      if (state.selectedId && cy.$("node:selected").empty()) {
        state.selectedId = null;
        emitter.emit("select", null);
      }
    }

    async function refresh() {
      if (state.inFlight) return state.inFlight;
      state.inFlight = (async () => {
        const read = await fetchTopology(topologyUrl(options), state.etag);
        if (!read.ok) {
          setStatus(false, read.message);
          return false;
        }
        if (read.body === null) {
          setStatus(true, "");
          return true;
        }
        state.etag = read.etag;
        state.model = buildModel(read.body);
        setStatus(true, "");
        sync(false);
        emitter.emit("data", state.model);
        return true;
      })();
      try {
        return await state.inFlight;
      } finally {
        state.inFlight = null;
      }
    }

    function schedule() {
      if (state.destroyed) return;
      // A huge vhost takes the broker a while to list: never ask more than half the time.
      const delay = Math.min(Math.max(options.refreshMs, state.lastFetchMs * 2), 5000);
      state.timer = window.setTimeout(async () => {
        const started = performance.now();
        if (!document.hidden) await refresh();
        state.lastFetchMs = performance.now() - started;
        schedule();
      }, delay);
    }

    bindInteraction(cy, {
      selected(id) {
        state.selectedId = id;
        emitter.emit("select", nodeDetails(state.model, id));
      },
      unselected() {
        if (!state.selectedId) return;
        state.selectedId = null;
        emitter.emit("select", null);
      },
      viewportMoved() {
        state.userMovedViewport = true;
      },
      backgroundDoubleTapped() {
        state.userMovedViewport = false;
        fitAll(cy, state.look);
      },
      moreTapped(of) {
        state.expanded.set(of, (state.expanded.get(of) || options.collapseAt) + 100);
        sync(false);
      },
    });

    const graph = {
      cy: cy,
      nodeId: nodeId,
      on: emitter.on,
      refresh: refresh,
      animateRoute: animator.animateRoute,
      animateDelivery: animator.animateDelivery,
      pulse(rates) {
        state.rates = Object.assign({}, rates || {});
        applyRates(cy, state.rates);
      },
      edgeKey(hop) {
        if (cy.getElementById(nodeId.exchange(hop.source)).empty()) return null;
        const edges = hopEdges(cy, state.model, Object.assign({ kind: "binding" }, hop));
        return edges.nonempty() ? edges[0].id() : null;
      },
      details: (id) => nodeDetails(state.model, id),
      search: (text, limit) => searchNodes(state.model, state.options, text, limit),
      select: (id) => selectNode(cy, id),
      get status() {
        return state.status;
      },
      get model() {
        return state.model;
      },
      get scope() {
        return state.scope;
      },
      setOptions(changes) {
        Object.assign(state.options, changes);
        sync(false);
      },
      setFilter(text) {
        state.filter = (text || "").trim();
        state.focus = null;
        sync(true);
      },
      focus(id) {
        state.focus = id;
        sync(true);
        if (id) selectNode(cy, id);
      },
      clearFocus() {
        state.focus = null;
        state.expanded.clear();
        sync(true);
      },
      get focused() {
        return state.focus;
      },
      showRoute(route) {
        // Light up a dry-run's path; its nodes are drawn even outside the current scope.
        state.route = route;
        state.pinned = routePins(route);
        sync(false);
        if (route) animator.animateRoute(route);
      },
      clearRoute() {
        state.route = null;
        state.pinned = new Set();
        sync(false);
      },
      fit() {
        fitAll(cy, state.look);
      },
      // Presenter mode on or off, light or dark: restyled, laid out again for the new label
      // sizes and fitted, never below PRESENTER_MIN_ZOOM while on.
      setLook(look) {
        const next = { presenter: Boolean(look && look.presenter), theme: look && look.theme === "dark" ? "dark" : "light" };
        const relayout = next.presenter !== state.look.presenter;
        state.look = next;
        cy.minZoom(next.presenter ? PRESENTER_MIN_ZOOM : 0.05);
        cy.maxZoom(next.presenter ? PRESENTER_MAX_ZOOM : 2.5);
        cy.style(stylesheet(next));
        container.classList.toggle("is-presenter", next.presenter);
        cy.resize(); // the page's layout changed with the look: read the canvas's size again
        if (relayout) {
          state.userMovedViewport = false;
          runLayout(cy, true, next);
        }
        noteLabelSize();
      },
      get look() {
        return Object.assign({}, state.look);
      },
      // 1: normal; 0.25: slow motion. Dots already travelling keep their pace.
      setSpeed(speed) {
        state.speed = speed > 0 ? speed : 1;
        container.dataset.speed = String(state.speed);
      },
      get speed() {
        return state.speed;
      },
      get hopMs() {
        return animator.hopMs();
      },
      minLabelPx: () => smallestLabelPx(cy),
      // True when the drawing does not fit the canvas even at the smallest zoom allowed
      // (in presenter mode, the page then gives the graph the feed's room).
      overflows() {
        const drawn = cy.elements().not(".dot");
        if (drawn.empty()) return false;
        const box = drawn.boundingBox();
        const room = 2 * 16 + 1;
        return box.w * cy.minZoom() + room > cy.width() || box.h * cy.minZoom() + room > cy.height();
      },
      destroy() {
        state.destroyed = true;
        resizes.disconnect();
        window.clearTimeout(state.timer);
        cy.destroy();
      },
    };

    return refresh().then(() => {
      schedule();
      return graph;
    });
  }

  window.flowsGraph = {
    mount: mount,
    nodeId: nodeId,
    buildModel: buildModel,
    exchangeTitle: exchangeTitle,
  };
})();
