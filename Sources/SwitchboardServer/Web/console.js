/*
 * Switchboard agent console. Plain JavaScript, no build step, no third-party code.
 *
 * Signs in with a password (or an API token) for an HttpOnly session cookie; every unsafe
 * request echoes the session's CSRF token. Live updates come from the events WebSocket,
 * resumed after the last sequence number seen, so nothing is missed across a reconnect.
 * Everything a patient wrote is set as text (textContent), never as HTML.
 */
(function () {
  "use strict";
  var csrf = null, me = null, current = null, filter = "mine", agents = {}, socket = null, backoff = 1000;
  var seqKey = "switchboard.console.seq";
  function $(id) { return document.getElementById(id); }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

  // `background`: a refresh the console made on its own (an event arrived), not something
  // the agent did; it does not count as activity, so an unattended console still signs out.
  function api(method, path, body, background) {
    var headers = { "Accept": "application/json" };
    if (background) { headers["X-Switchboard-Background"] = "1"; }
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    if (method !== "GET" && csrf) { headers["X-CSRF-Token"] = csrf; }
    return fetch(path, { method: method, headers: headers, credentials: "same-origin",
                         body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (response) {
        if (response.status === 401 && path !== "/api/v1/session") { signedOut("Your session ended. Please sign in again."); }
        if (response.status === 204) { return null; }
        return response.json().catch(function () { return null; }).then(function (data) {
          if (!response.ok) { throw new Error((data && data.error && data.error.message) || ("HTTP " + response.status)); }
          return data;
        });
      });
  }
  function fail(error) { $("action-error").textContent = error.message || String(error); }

  // ---- Sign in / out ----------------------------------------------------------------
  function signedOut(message) {
    csrf = null; me = null; current = null;
    if (socket) { socket.onclose = null; socket.close(); socket = null; }
    $("app").hidden = true; $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("signin-email").focus();
  }
  function signedIn(session) {
    csrf = session.csrf_token || null; me = session.agent;
    $("signin").hidden = true; $("app").hidden = false;
    $("me").textContent = me.name + " (" + me.role + ")";
    api("GET", "/api/v1/me").then(function (data) {
      if (data && data.agent && data.agent.presence) { $("presence").value = data.agent.presence; }
    }).catch(function () {});
    loadAgents().then(loadInbox);
    connectEvents();
  }
  $("signin-form").addEventListener("submit", function (e) {
    e.preventDefault();
    api("POST", "/api/v1/session", { email: $("signin-email").value, password: $("signin-password").value })
      .then(function (session) { $("signin-password").value = ""; signedIn(session); })
      .catch(function (error) { $("signin-error").textContent = error.message; });
  });
  $("token-form").addEventListener("submit", function (e) {
    e.preventDefault();
    api("POST", "/api/v1/session", { token: $("signin-token").value })
      .then(function (session) { $("signin-token").value = ""; signedIn(session); })
      .catch(function (error) { $("signin-error").textContent = error.message; });
  });
  $("signout").addEventListener("click", function () {
    api("DELETE", "/api/v1/session").catch(function () {}).then(function () { signedOut("Signed out."); });
  });
  $("presence").addEventListener("change", function () {
    api("PUT", "/api/v1/me/presence", { presence: $("presence").value }).catch(fail);
  });

  // ---- Agents (names for messages, transfer targets) ----------------------------------
  function loadAgents() {
    agents = {}; agents[me.id] = me;
    var select = $("transfer-target"); clear(select);
    return api("GET", "/api/v1/teams").catch(function () { return { teams: [] }; }).then(function (data) {
      (data.teams || []).forEach(function (team) {
        var option = el("option", null, "Team: " + team.name); option.value = "team:" + team.name; select.appendChild(option);
      });
      if (me.role === "agent") { return; }
      return api("GET", "/api/v1/agents").then(function (list) {
        (list.agents || []).forEach(function (agent) {
          agents[agent.id] = agent;
          if (agent.id !== me.id) {
            var option = el("option", null, agent.name); option.value = "agent:" + agent.id; select.appendChild(option);
          }
        });
      }).catch(function () {});
    });
  }

  // ---- Inbox ------------------------------------------------------------------------
  var queries = { mine: "assignee=me&status=open", queue: "assignee=unassigned&status=open", open: "status=open", resolved: "status=resolved" };
  Array.prototype.forEach.call(document.querySelectorAll(".filters button"), function (button) {
    button.addEventListener("click", function () {
      filter = button.getAttribute("data-filter");
      Array.prototype.forEach.call(document.querySelectorAll(".filters button"), function (b) {
        b.setAttribute("aria-pressed", String(b === button));
      });
      loadInbox();
    });
  });
  function describe(conversation) {
    return [conversation.channel, conversation.status, conversation.intent || "", when(conversation.last_message_at)]
      .filter(Boolean).join(" · ");
  }
  function conversationButton(conversation) {
    var button = el("button");
    button.type = "button";
    button.setAttribute("data-conversation", conversation.id);
    if (current && current.conversation.id === conversation.id) { button.setAttribute("aria-current", "true"); }
    button.appendChild(el("span", "badge " + conversation.priority, conversation.priority));
    button.appendChild(document.createTextNode(describe(conversation)));
    button.addEventListener("click", function () { openConversation(conversation.id, true); });
    var item = el("li"); item.appendChild(button);
    return item;
  }
  function loadInbox(background) {
    if (!me) { return Promise.resolve(); }
    return api("GET", "/api/v1/conversations?" + queries[filter], undefined, background === true).then(function (data) {
      var list = $("inbox"); clear(list);
      data.conversations.forEach(function (c) { list.appendChild(conversationButton(c)); });
      if (!data.conversations.length) { list.appendChild(el("li", "empty", "Nothing here.")); }
    }).catch(fail);
  }

  // ---- One conversation -------------------------------------------------------------
  function sender(message, contactName) {
    if (message.direction === "inbound") { return contactName || "Patient"; }
    var agent = message.sender_agent_id && agents[message.sender_agent_id];
    var name = agent ? agent.name : (message.sender_agent_id ? "Agent" : "Automatic reply");
    return message.direction === "note" ? "Internal note · " + name : name;
  }
  function openConversation(id, focus, background) {
    $("action-error").textContent = "";
    return api("GET", "/api/v1/conversations/" + encodeURIComponent(id), undefined, background === true).then(function (detail) {
      current = detail;
      var c = detail.conversation;
      $("empty").hidden = true; $("conversation").hidden = false;
      $("conversation-title").textContent = detail.contact.name || "Patient";
      $("conversation-facts").textContent = [c.channel, c.status, "priority " + c.priority, c.intent, c.language]
        .filter(Boolean).join(" · ");
      var identities = $("identities"); clear(identities);
      detail.contact.identities.forEach(function (identity) {
        identities.appendChild(el("li", null, identity.kind + ": " + identity.value));
      });
      var list = $("messages"); clear(list);
      detail.messages.forEach(function (message) {
        var item = el("li", message.direction);
        item.appendChild(el("span", "who", sender(message, detail.contact.name)));
        item.appendChild(document.createTextNode(message.text));
        var meta = [message.channel, when(message.created_at)];
        if (message.delivery_status) { meta.push(message.delivery_status); }
        if (message.failure_reason) { meta.push(message.failure_reason); }
        if (message.triage) { meta.push(message.triage.intent + ", " + message.triage.urgency); }
        item.appendChild(el("span", "meta", meta.join(" · ")));
        list.appendChild(item);
      });
      var mine = c.assignee_id === me.id;
      $("claim").hidden = mine || c.status === "resolved";
      $("resolve").hidden = c.status === "resolved";
      $("reopen").hidden = c.status !== "resolved";
      $("patient-typing").textContent = "";
      Array.prototype.forEach.call(document.querySelectorAll("#inbox button"), function (b) {
        if (b.getAttribute("data-conversation") === c.id) { b.setAttribute("aria-current", "true"); } else { b.removeAttribute("aria-current"); }
      });
      if (focus) { $("main").focus(); }
      return api("GET", "/api/v1/conversations?status=any&contact_id=" + encodeURIComponent(detail.contact.id), undefined,
                 background === true).then(function (data) {
        var history = $("history"); clear(history);
        data.conversations.filter(function (other) { return other.id !== c.id; }).forEach(function (other) {
          history.appendChild(conversationButton(other));
        });
        if (!history.firstChild) { history.appendChild(el("li", "empty", "No other conversations.")); }
      });
    }).catch(fail);
  }
  function act(path, body) {
    if (!current) { return; }
    var id = current.conversation.id;
    $("action-error").textContent = "";
    return api("POST", "/api/v1/conversations/" + encodeURIComponent(id) + path, body)
      .then(function () { return openConversation(id); }).then(loadInbox).catch(fail);
  }
  $("claim").addEventListener("click", function () { act("/claim"); });
  $("resolve").addEventListener("click", function () { act("/resolve"); });
  $("reopen").addEventListener("click", function () { act("/reopen"); });
  $("transfer").addEventListener("click", function () {
    var target = $("transfer-target").value;
    if (!target) { return; }
    var parts = target.split(":");
    act("/transfer", parts[0] === "team" ? { to_team: parts.slice(1).join(":") } : { to_agent: parts.slice(1).join(":") });
  });
  $("compose").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("compose-text").value;
    if (!text.trim()) { return; }
    act("/messages", { text: text }).then(function () { if (!$("action-error").textContent) { $("compose-text").value = ""; } });
    stopTyping();
  });
  $("send-note").addEventListener("click", function () {
    var text = $("compose-text").value;
    if (!text.trim()) { return; }
    act("/notes", { text: text }).then(function () { if (!$("action-error").textContent) { $("compose-text").value = ""; } });
  });
  $("compose-text").addEventListener("keydown", function (e) {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $("send-reply").click(); }
  });
  // The patient sees "typing…" in the chat widget (nothing is stored).
  var typingSentAt = 0, typingTimer = null;
  function stopTyping() {
    clearTimeout(typingTimer);
    if (typingSentAt && current) {
      typingSentAt = 0;
      api("POST", "/api/v1/conversations/" + encodeURIComponent(current.conversation.id) + "/typing", { active: false }).catch(function () {});
    }
  }
  $("compose-text").addEventListener("input", function () {
    if (!current || current.conversation.channel !== "chat") { return; }
    var now = Date.now();
    if (now - typingSentAt > 3000) {
      typingSentAt = now;
      api("POST", "/api/v1/conversations/" + encodeURIComponent(current.conversation.id) + "/typing", { active: true }).catch(function () {});
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(stopTyping, 4000);
  });

  // ---- Offers -----------------------------------------------------------------------
  function showOffer(event) {
    var id = event.data.conversation_id;
    if (document.querySelector('[data-offer="' + CSS.escape(id) + '"]')) { return; }
    var box = el("div", "offer" + (event.data.priority === "emergency" ? " emergency" : ""));
    box.setAttribute("data-offer", id);
    box.appendChild(el("span", null, "New " + (event.data.priority || "") + " " + (event.data.channel || "") + " conversation offered to you"));
    var accept = el("button", "primary", "Accept"); accept.type = "button";
    var decline = el("button", null, "Decline"); decline.type = "button";
    accept.addEventListener("click", function () {
      api("POST", "/api/v1/conversations/" + encodeURIComponent(id) + "/accept").then(function () {
        box.remove(); loadInbox(); openConversation(id, true);
      }).catch(function (error) { box.remove(); fail(error); });
    });
    decline.addEventListener("click", function () {
      api("POST", "/api/v1/conversations/" + encodeURIComponent(id) + "/decline").then(function () { box.remove(); }).catch(fail);
    });
    box.appendChild(accept); box.appendChild(decline);
    $("offers").appendChild(box);
  }

  // ---- Live events ------------------------------------------------------------------
  var inboxTimer = null, conversationTimer = null;
  function soon(which) {
    if (which === "inbox") { clearTimeout(inboxTimer); inboxTimer = setTimeout(function () { loadInbox(true); }, 150); }
    if (which === "conversation" && current) {
      clearTimeout(conversationTimer);
      conversationTimer = setTimeout(function () { if (current) { openConversation(current.conversation.id, false, true); } }, 150);
    }
  }
  function connectEvents() {
    var after = sessionStorage.getItem(seqKey);
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/v1/events" + (after ? "?after=" + encodeURIComponent(after) : "");
    var ws = new WebSocket(url);
    socket = ws;
    ws.onopen = function () { $("live").textContent = "Live"; backoff = 1000; };
    ws.onmessage = function (message) {
      var frame;
      try { frame = JSON.parse(message.data); } catch (e) { return; }
      if (frame.type === "hello") { sessionStorage.setItem(seqKey, String(frame.seq)); return; }
      if (frame.type !== "event") { return; }
      sessionStorage.setItem(seqKey, String(frame.seq));
      var data = frame.data || {};
      switch (frame.kind) {
        case "resync": loadInbox(true); soon("conversation"); return;
        case "offer.created": if (frame.data) { showOffer(frame); } break;
        case "offer.ended":
          var box = document.querySelector('[data-offer="' + CSS.escape(data.conversation_id || "") + '"]');
          if (box) { box.remove(); }
          break;
        case "chat.typing":
          if (current && data.conversation_id === current.conversation.id) {
            $("patient-typing").textContent = data.active ? "The patient is typing…" : "";
          }
          return;
      }
      soon("inbox");
      if (current && data.conversation_id === current.conversation.id) { soon("conversation"); }
    };
    ws.onclose = function (event) {
      if (socket !== ws) { return; }
      socket = null;
      if (event.code === 4401) { signedOut("Your session ended. Please sign in again."); return; }
      if (event.code === 4400) { sessionStorage.removeItem(seqKey); }
      $("live").textContent = "Reconnecting…";
      setTimeout(function () { if (me) { connectEvents(); } }, backoff * (0.5 + Math.random() / 2));
      backoff = Math.min(backoff * 2, 30000);
    };
  }

  // ---- Start ------------------------------------------------------------------------
  api("GET", "/api/v1/session").then(signedIn).catch(function () { signedOut(""); });
})();
