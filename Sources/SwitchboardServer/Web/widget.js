/*
 * Switchboard chat widget — one script tag adds a chat launcher to any page:
 *
 *   <script src="https://switchboard.example.org/widget.js" defer
 *           data-title="Questions? Chat with us" data-language="es"></script>
 *
 * Optional data- attributes: title, language (en | es; default: the browser's), position
 * (right | left), and for a patient the site knows: identity-id, identity-hash (computed
 * on the site's server: hex HMAC-SHA256(chat.identity_secret, id + ":" + expires)),
 * identity-expires (Unix seconds), identity-name.
 *
 * Plain JavaScript, no build step, no third-party code. Everything it shows from the
 * network is set as text (textContent), never as HTML. It lives in a shadow root, so the
 * host page's CSS cannot break it and it cannot break the page.
 *
 * Reliability: every outgoing message has a client id and stays in localStorage until the
 * server acknowledges it (after commit); reconnects resume from the last server sequence
 * number seen. Protocol: channels/webchat/PROTOCOL.md.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__switchboardWidget) { return; }
  window.__switchboardWidget = true;

  var data = script.dataset;
  var server = new URL(script.src, document.baseURI);
  var socketURL = (server.protocol === "https:" ? "wss://" : "ws://") + server.host + "/chat";
  var identity = data.identityId && data.identityHash
    ? { id: data.identityId, hash: data.identityHash, name: data.identityName || undefined,
        expires: data.identityExpires ? Number(data.identityExpires) : undefined } : null;
  // Each identified patient has their own key (their unsent messages are never sent as
  // someone else's on a shared computer); anonymous visitors share the site's.
  var storageKey = "switchboard.chat." + server.host + (identity ? ".patient." + identity.id : "");

  var STRINGS = {
    en: {
      open: "Open chat", close: "Close chat", title: "Chat with us", send: "Send", placeholder: "Type your message",
      label: "Message", log: "Conversation", connecting: "Connecting…", offline: "Reconnecting… your messages are kept and sent when we are back.",
      sending: "Sending…", failed: "Not sent: ", you: "You", agent: "Care team", system: "Notice",
      queue: function (p, w) { return "You are number " + p + " in line" + (w ? " (about " + Math.max(1, Math.round(w / 60)) + " min)" : "") + "."; },
      joined: function (n) { return n + " joined the chat."; },
      resolved: "This conversation was marked resolved. Write again if you need anything else.",
      nobody: "Nobody is available to chat right now.", closed: function (t) { return "We are closed" + (t ? "; we open again " + t : "") + "."; },
      leave: "You can leave a message here, or continue by:", email: "Email", sms: "Text message (SMS)",
      address: { email: "Your email address", sms: "Your mobile number" }, go: "Continue",
      continued: { email: "We will answer by email.", sms: "We will answer by text message." },
      typing: "typing…", emergency: "For a medical emergency, call 911.", refused: "The chat is not available on this page.",
      badAddress: "That does not look like a valid number or address.", addressTaken: "That number or address cannot be used here; please call us."
    },
    es: {
      open: "Abrir chat", close: "Cerrar chat", title: "Chatee con nosotros", send: "Enviar", placeholder: "Escriba su mensaje",
      label: "Mensaje", log: "Conversación", connecting: "Conectando…", offline: "Reconectando… sus mensajes se guardan y se envían al volver.",
      sending: "Enviando…", failed: "No enviado: ", you: "Usted", agent: "Equipo de atención", system: "Aviso",
      queue: function (p, w) { return "Usted es el número " + p + " en la fila" + (w ? " (unos " + Math.max(1, Math.round(w / 60)) + " min)" : "") + "."; },
      joined: function (n) { return n + " se unió al chat."; },
      resolved: "Esta conversación se marcó como resuelta. Escriba de nuevo si necesita algo más.",
      nobody: "No hay nadie disponible para chatear ahora.", closed: function (t) { return "Estamos cerrados" + (t ? "; abrimos de nuevo " + t : "") + "."; },
      leave: "Puede dejar un mensaje aquí o continuar por:", email: "Correo electrónico", sms: "Mensaje de texto (SMS)",
      address: { email: "Su correo electrónico", sms: "Su número de celular" }, go: "Continuar",
      continued: { email: "Le responderemos por correo electrónico.", sms: "Le responderemos por mensaje de texto." },
      typing: "escribiendo…", emergency: "Si es una emergencia médica, llame al 911.", refused: "El chat no está disponible en esta página.",
      badAddress: "Ese número o dirección no parece válido.", addressTaken: "Ese número o dirección no se puede usar aquí; por favor llámenos."
    }
  };
  var language = (data.language || navigator.language || "en").slice(0, 2).toLowerCase() === "es" ? "es" : "en";
  var t = STRINGS[language];

  // ---- State kept across page loads -------------------------------------------------
  function load() {
    try { return JSON.parse(localStorage.getItem(storageKey)) || {}; } catch (e) { return {}; }
  }
  var saved = load();
  var state = {
    token: identity ? null : (saved.token || null),
    // Each page load shows the whole history again (from 0); reconnects within the page
    // resume after the last sequence number seen.
    lastSeq: 0, historyUntil: null,
    pending: saved.pending || [],          // [{client_id, text}] not yet acknowledged
    open: false, socket: null, backoff: 1000, stopped: false, retryTimer: null, pingTimer: null, pongTimer: null,
    receivedTimer: null, sentAny: (saved.pending || []).length > 0 || !!saved.token,
    availability: null, continued: null, unread: 0
  };
  function persist() {
    try {
      localStorage.setItem(storageKey, JSON.stringify(identity ? { pending: state.pending }
        : { token: state.token, pending: state.pending }));
    } catch (e) { /* private mode: the chat still works for this page */ }
  }
  function newClientID() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var bytes = new Uint8Array(16); crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // ---- DOM --------------------------------------------------------------------------
  var host = document.createElement("div");
  host.setAttribute("data-switchboard-widget", "");
  var root = host.attachShadow({ mode: "open" });
  var sheet = new CSSStyleSheet();
  var side = data.position === "left" ? "left" : "right";
  sheet.replaceSync([
    ":host{all:initial}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}",
    ".launcher{position:fixed;bottom:20px;" + side + ":20px;z-index:2147483000;border:0;border-radius:28px;padding:14px 20px;",
    "background:#0b5cad;color:#fff;font-size:16px;font-weight:600;cursor:pointer;box-shadow:0 2px 10px rgba(0,0,0,.3)}",
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}",
    ".badge{display:inline-block;min-width:1.4em;margin-left:.5em;border-radius:1em;background:#fff;color:#0b5cad;font-size:13px;padding:0 .3em}",
    ".panel{position:fixed;bottom:84px;" + side + ":20px;z-index:2147483001;width:min(380px,calc(100vw - 24px));height:min(560px,calc(100vh - 110px));",
    "display:flex;flex-direction:column;background:#fff;color:#1b1b1b;border-radius:12px;box-shadow:0 4px 24px rgba(0,0,0,.35);overflow:hidden}",
    ".panel[hidden]{display:none}",
    "header{display:flex;align-items:center;justify-content:space-between;background:#0b5cad;color:#fff;padding:12px 14px}",
    "h2{margin:0;font-size:17px}",
    ".x{background:transparent;border:0;color:#fff;font-size:24px;line-height:1;cursor:pointer;padding:4px 8px}",
    ".note{margin:0;padding:6px 14px;font-size:13px;background:#fff4ce;color:#3d3000}",
    ".status{margin:0;padding:6px 14px;font-size:14px;background:#eef3f8;color:#1b1b1b;min-height:1em}",
    ".status:empty{display:none}",
    "ol{list-style:none;margin:0;padding:12px;flex:1;overflow-y:auto;display:flex;flex-direction:column;gap:8px}",
    "li{max-width:85%;padding:8px 11px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere;font-size:15px;line-height:1.35}",
    "li.patient{align-self:flex-end;background:#0b5cad;color:#fff}",
    "li.agent{align-self:flex-start;background:#e8e8e8;color:#1b1b1b}",
    "li.system{align-self:center;background:#fff4ce;color:#3d3000;font-size:14px}",
    "li .who{display:block;font-size:12px;font-weight:600;margin-bottom:2px}",
    "li.pending{opacity:.75}li.failed{background:#a4262c;color:#fff}",
    ".offer{padding:8px 14px;border-top:1px solid #ddd;font-size:14px}.offer[hidden]{display:none}",
    ".offer label{display:block;margin:4px 0 2px}.offer input,.offer select{width:100%;padding:6px;font-size:15px;border:1px solid #767676;border-radius:6px}",
    ".offer button{margin-top:6px}",
    "form.compose{display:flex;gap:8px;padding:10px;border-top:1px solid #ddd}",
    "textarea{flex:1;resize:none;height:44px;padding:8px;font-size:15px;border:1px solid #767676;border-radius:8px;color:#1b1b1b}",
    "button.primary{border:0;border-radius:8px;background:#0b5cad;color:#fff;font-size:15px;font-weight:600;padding:0 16px;min-height:44px;cursor:pointer}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}"
  ].join(""));
  root.adoptedStyleSheets = [sheet];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  var launcher = el("button", { "class": "launcher", type: "button", "aria-expanded": "false", "aria-controls": "sb-panel" }, data.title || t.title);
  var badge = el("span", { "class": "badge", hidden: "" });
  launcher.appendChild(badge);
  var panel = el("section", { "class": "panel", id: "sb-panel", role: "dialog", "aria-modal": "false", "aria-labelledby": "sb-title", hidden: "" });
  var header = el("header");
  header.appendChild(el("h2", { id: "sb-title" }, data.title || t.title));
  var closeButton = el("button", { "class": "x", type: "button", "aria-label": t.close }, "×");
  header.appendChild(closeButton);
  var emergency = el("p", { "class": "note" }, t.emergency);
  var status = el("p", { "class": "status", role: "status", "aria-live": "polite" });
  var log = el("ol", { role: "log", "aria-live": "polite", "aria-label": t.log, tabindex: "0" });
  var offer = el("div", { "class": "offer", hidden: "" });
  var compose = el("form", { "class": "compose" });
  var inputLabel = el("label", { "for": "sb-input", "class": "sr" }, t.label);
  var input = el("textarea", { id: "sb-input", placeholder: t.placeholder, maxlength: "4000", rows: "2" });
  var sendButton = el("button", { "class": "primary", type: "submit" }, t.send);
  compose.appendChild(inputLabel); compose.appendChild(input); compose.appendChild(sendButton);
  [header, emergency, status, log, offer, compose].forEach(function (n) { panel.appendChild(n); });
  root.appendChild(launcher); root.appendChild(panel);
  (document.body || document.documentElement).appendChild(host);

  var bubbles = {};   // client_id → li of a patient message not yet in the stream
  var seenClientIDs = {};  // client ids of patient messages the stream has shown
  var rendered = {};  // seq → true
  function bubble(kind, who, text, extraClass) {
    var li = el("li", { "class": kind + (extraClass ? " " + extraClass : "") });
    li.appendChild(el("span", { "class": "who" }, who));
    li.appendChild(document.createTextNode(text));
    log.appendChild(li);
    log.scrollTop = log.scrollHeight;
    return li;
  }
  function setStatus(text) { status.textContent = text || ""; }
  function showUnread() {
    if (state.unread > 0 && !state.open) { badge.textContent = String(state.unread); badge.hidden = false; } else { badge.hidden = true; }
  }

  function openPanel() {
    state.open = true; panel.hidden = false; launcher.setAttribute("aria-expanded", "true"); launcher.setAttribute("aria-label", t.close);
    state.unread = 0; showUnread(); input.focus(); markRead(); ensureConnected();
  }
  function closePanel() {
    state.open = false; panel.hidden = true; launcher.setAttribute("aria-expanded", "false"); launcher.removeAttribute("aria-label");
    launcher.focus();
  }
  launcher.addEventListener("click", function () { if (state.open) { closePanel(); } else { openPanel(); } });
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape") { closePanel(); } });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  var typingTimer = null, typingActive = false;
  input.addEventListener("input", function () {
    if (!typingActive) { typingActive = true; frame({ type: "typing", active: true }); }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { typingActive = false; frame({ type: "typing", active: false }); }, 4000);
  });
  compose.addEventListener("submit", function (e) { e.preventDefault(); submit(); });

  function submit() {
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    var message = { client_id: newClientID(), text: text };
    state.pending.push(message); state.sentAny = true; persist();
    bubbles[message.client_id] = bubble("patient", t.you, text, "pending");
    bubbles[message.client_id].setAttribute("aria-busy", "true");
    frame({ type: "message", client_id: message.client_id, text: text });
    ensureConnected();
    renderOffer();
  }

  // ---- Socket -----------------------------------------------------------------------
  function frame(object) {
    if (state.socket && state.socket.readyState === 1 && state.socket.ready) { state.socket.send(JSON.stringify(object)); return true; }
    return false;
  }
  function ensureConnected() {
    if (state.stopped || (state.socket && state.socket.readyState <= 1)) { return; }
    clearTimeout(state.retryTimer);
    connect();
  }
  function scheduleReconnect() {
    if (state.stopped) { return; }
    var delay = Math.min(state.backoff, 30000) * (0.5 + Math.random() / 2);
    state.backoff = Math.min(state.backoff * 2, 30000);
    state.retryTimer = setTimeout(connect, delay);
  }
  function connect() {
    setStatus(t.connecting);
    var socket = new WebSocket(socketURL);
    state.socket = socket;
    socket.onopen = function () {
      var hello = { type: "hello", v: 1, last_seq: state.lastSeq, language: language };
      if (identity) { hello.identity = identity; } else if (state.token) { hello.visitor_token = state.token; }
      socket.send(JSON.stringify(hello));
    };
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      handle(socket, message);
    };
    socket.onclose = function (event) {
      clearInterval(state.pingTimer); clearTimeout(state.pongTimer);
      if (state.socket !== socket) { return; }
      state.socket = null;
      if (event.code === 4401 || event.code === 4403) { state.stopped = true; setStatus(t.refused); return; }
      if (event.code === 1001 && event.reason === "idle") {
        // Idle: come back when the patient does; replies wait on the server meanwhile.
        setStatus("");
        if (document.visibilityState === "visible" && state.open) { scheduleReconnect(); }
        return;
      }
      if (event.code === 4400 && state.token) { state.token = null; state.lastSeq = 0; persist(); }
      setStatus(t.offline);
      scheduleReconnect();
    };
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && (state.open || state.pending.length)) { ensureConnected(); markRead(); }
  });
  window.addEventListener("online", function () { if (state.open || state.pending.length) { ensureConnected(); } });

  function handle(socket, m) {
    switch (m.type) {
      case "welcome":
        socket.ready = true; state.backoff = 1000; setStatus("");
        if (!identity && m.visitor_token) { state.token = m.visitor_token; }
        if (m.seq < state.lastSeq) { state.lastSeq = m.seq; }   // a restored server: take its numbering
        if (m.seq > 0) { state.sentAny = true; }
        if (m.max_message_characters) { input.setAttribute("maxlength", String(m.max_message_characters)); }
        persist();
        if (state.historyUntil === null) {
          state.historyUntil = m.seq;
          if (m.seq <= state.lastSeq) { showPending(); }
        }
        applyAvailability(m.availability);
        // Unacknowledged messages go again, with their client ids: the server dedupes.
        state.pending.forEach(function (p) { socket.send(JSON.stringify({ type: "message", client_id: p.client_id, text: p.text })); });
        clearInterval(state.pingTimer);
        state.pingTimer = setInterval(function () {
          if (!frame({ type: "ping" })) { return; }
          clearTimeout(state.pongTimer);
          state.pongTimer = setTimeout(function () { socket.close(); }, 10000);
        }, 25000);
        break;
      case "pong":
        clearTimeout(state.pongTimer); break;
      case "ack":
        state.pending = state.pending.filter(function (p) { return p.client_id !== m.client_id; });
        persist();
        if (bubbles[m.client_id]) { bubbles[m.client_id].classList.remove("pending"); bubbles[m.client_id].removeAttribute("aria-busy"); }
        break;
      case "message":
        if (rendered[m.seq]) { break; }
        rendered[m.seq] = true;
        if (m.from === "patient" && m.client_id) { seenClientIDs[m.client_id] = true; }
        if (m.from === "patient" && m.client_id && bubbles[m.client_id]) {
          bubbles[m.client_id].classList.remove("pending"); bubbles[m.client_id].removeAttribute("aria-busy");
          delete bubbles[m.client_id];
        } else {
          bubble(m.from, m.from === "patient" ? t.you : m.from === "agent" ? (m.agent_name || t.agent) : t.system, m.text);
          if (m.from !== "patient" && !state.open) { state.unread += 1; showUnread(); }
        }
        if (m.seq > state.lastSeq) { state.lastSeq = m.seq; }
        if (state.historyUntil !== null && !state.historyShown && m.seq >= state.historyUntil) { showPending(); }
        clearTimeout(state.receivedTimer);
        state.receivedTimer = setTimeout(function () { frame({ type: "received", seq: state.lastSeq }); markRead(); }, 200);
        break;
      case "queue":
        // Once the conversation goes on by SMS or email, the chat queue is not the patient's
        // concern: keep telling them how the answer will come. Nor while the continue form's
        // error is showing.
        if (!state.continued && !state.formError) { setStatus(t.queue(m.position, m.estimated_wait_seconds)); }
        break;
      case "agent_joined":
        setStatus(t.joined(m.name)); break;
      case "typing":
        if (!state.continued && !state.formError) { setStatus(m.active ? t.agent + " " + t.typing : ""); }
        break;
      case "resolved":
        setStatus(t.resolved); break;
      case "availability":
        applyAvailability(m); break;
      case "continued":
        state.continued = m.channel; renderOffer(); setStatus(t.continued[m.channel]); break;
      case "error":
        if (!m.client_id && (m.code === "invalid_field" || m.code === "address_unavailable")) {
          // The continue form's answer stays until the patient submits again.
          state.formError = true;
          setStatus(m.code === "invalid_field" ? t.badAddress : t.addressTaken);
          break;
        }
        var failed = m.client_id && state.pending.filter(function (p) { return p.client_id === m.client_id; })[0];
        if (!failed) { break; }
        if (m.code === "rate_limited" || m.code === "unavailable") {
          setTimeout(function () { frame({ type: "message", client_id: failed.client_id, text: failed.text }); }, m.retry_after_ms || 2000);
        } else {
          // Refused for good (too long, invalid): tell the patient, stop resending it.
          state.pending = state.pending.filter(function (p) { return p.client_id !== m.client_id; }); persist();
          var b = bubbles[m.client_id] || (bubbles[m.client_id] = bubble("patient", t.you, failed.text));
          b.classList.remove("pending"); b.classList.add("failed"); b.removeAttribute("aria-busy");
          b.appendChild(el("span", { "class": "who" }, t.failed + m.message));
        }
        break;
    }
  }
  // Messages from an earlier page that the server has not acknowledged yet, shown after
  // the history so the conversation reads in order.
  function showPending() {
    state.historyShown = true;
    state.pending.forEach(function (p) {
      if (!bubbles[p.client_id] && !seenClientIDs[p.client_id]) { bubbles[p.client_id] = bubble("patient", t.you, p.text, "pending"); }
    });
  }
  function markRead() {
    if (state.open && document.visibilityState === "visible" && state.lastSeq > 0) { frame({ type: "read", seq: state.lastSeq }); }
  }

  // ---- Nobody available: offer to continue by email or SMS ----------------------------
  function applyAvailability(a) {
    state.availability = a;
    renderOffer();
  }
  function renderOffer() {
    var a = state.availability;
    while (offer.firstChild) { offer.removeChild(offer.firstChild); }
    if (!a || (a.open && a.agents_available)) { offer.hidden = true; return; }
    offer.hidden = false;
    var when = a.next_opening ? new Date(a.next_opening).toLocaleString(language) : "";
    offer.appendChild(el("p", {}, a.open ? t.nobody : t.closed(when)));
    if (state.continued) { offer.appendChild(el("p", {}, t.continued[state.continued])); return; }
    if (!a.continue_with || !a.continue_with.length) { return; }
    offer.appendChild(el("p", {}, t.leave));
    if (!state.sentAny) { return; }   // the server continues an existing conversation
    var form = el("form");
    var select = el("select", { id: "sb-channel", "aria-label": t.leave });
    a.continue_with.forEach(function (c) { select.appendChild(el("option", { value: c }, t[c])); });
    var label = el("label", { "for": "sb-address" }, t.address[a.continue_with[0]]);
    var address = el("input", { id: "sb-address", autocomplete: a.continue_with[0] === "sms" ? "tel" : "email" });
    select.addEventListener("change", function () {
      label.textContent = t.address[select.value];
      address.setAttribute("autocomplete", select.value === "sms" ? "tel" : "email");
      address.type = select.value === "sms" ? "tel" : "email";
    });
    address.type = a.continue_with[0] === "sms" ? "tel" : "email";
    var go = el("button", { "class": "primary", type: "submit" }, t.go);
    [select, label, address, go].forEach(function (n) { form.appendChild(n); });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      if (address.value.trim()) { state.formError = false; frame({ type: "continue", channel: select.value, address: address.value.trim() }); }
    });
    offer.appendChild(form);
  }

  // Messages typed before a page change are still unsent: connect at once to send them.
  if (state.pending.length) { ensureConnected(); }
  window.SwitchboardChat = { open: openPanel, close: closePanel };
})();
