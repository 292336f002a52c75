/*
 * tcai chat UI. Runs inside frame.html, served by the daemon, inside the host page's iframe.
 *
 * Owns: the launcher and panel, talking to POST /api/chat (SSE or JSON), the visitor's
 * session id and a display-only copy of the transcript (in this frame's localStorage when the
 * browser allows it, and always mirrored to embed.js, which keeps them in the host page's
 * first-party storage: browsers often block storage in cross-site iframes), booking actions,
 * quick replies and the paused / error states.
 * Deliberately does not: hold any secret but the short-lived widget token (handed over by
 * embed.js via postMessage, kept in memory only), render any text as HTML (every string goes
 * through textContent), or talk to any origin but the daemon's and the host page's.
 */
(function () {
  "use strict";

  var CHAT_TIMEOUT_MS = 35000;
  var TOKEN_WAIT_MS = 12000;
  var TOKEN_EARLY_REFRESH_MS = 30000;
  var MAX_MESSAGE = 2000;
  var MAX_TRANSCRIPT = 50;
  var MAX_TEXT = 4000;
  var SESSION_ID = /^[A-Za-z0-9_-]{8,64}$/;
  var MAX_QUICK = 6;
  var MAX_COOLDOWN_S = 3600;
  var SVG_NS = "http://www.w3.org/2000/svg";

  var TEXT = {
    network: "We couldn't reach the assistant. Please try again.",
    generic: "Sorry, something went wrong on our side. Please try again.",
    callUs: "You can also call us at {phone}.",
    retry: "Retry",
    rateLimited: "You're sending messages a little fast. Please wait a moment.",
    invalid: "That message couldn't be sent. Please shorten it and try again.",
    notAllowed: "This chat isn't available on this website.",
    expired: "Your chat session expired. Please reload the page.",
    paused: "Chat is unavailable right now. Please try again later.",
    requestReceived: "Request received \u2014 our team will reach out to confirm.",
    placeholder: "Write a message\u2026",
    send: "Send message",
    close: "Close chat",
    typing: "The assistant is typing",
    subtitle: "Virtual assistant",
    bookDefault: "Book an appointment",
    quickGroup: "Suggested replies"
  };

  var ICONS = {
    chat: [
      "M12 3C6.48 3 2 6.86 2 11.6c0 2.5 1.25 4.75 3.24 6.32L4.4 21.3a.5.5 0 0 0 .7.56l4.02-1.86c.93.22 1.9.34 2.88.34 5.52 0 10-3.86 10-8.74S17.52 3 12 3z"
    ],
    close: ["M6 6l12 12", "M18 6L6 18"],
    send: [
      "M3.4 20.4l17.45-7.48a1 1 0 0 0 0-1.84L3.4 3.6a1 1 0 0 0-1.39.91L2 9.12c0 .5.37.93.87.99L17 12 2.87 13.88c-.5.07-.87.5-.87 1l.01 4.61c0 .71.73 1.2 1.39.91z"
    ],
    external: ["M14 4h6v6", "M20 4l-9 9", "M18 14v4a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h4"],
    check: ["M5 12.5l4.5 4.5L19 7.5"]
  };

  var params;
  var client;
  var bot;
  var hostOrigin;
  var apiOrigin = window.location.origin;

  var state = {
    initialised: false,
    token: "",
    tokenExpiresAt: 0,
    config: {},
    sessionId: "",
    transcript: [],
    open: false,
    busy: false,
    paused: false,
    blocked: false,
    cooldownUntil: 0,
    cooldownTimer: null,
    lastMessage: "",
    tokenWaiters: [],
    tokenRequested: false
  };
  var ui = {};

  /* ---------- small helpers ---------- */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function icon(name, stroke) {
    var svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "tcai-icon tcai-icon-" + name);
    var paths = ICONS[name] || [];
    for (var i = 0; i < paths.length; i++) {
      var path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", paths[i]);
      if (stroke) {
        path.setAttribute("fill", "none");
        path.setAttribute("stroke", "currentColor");
        path.setAttribute("stroke-width", "2");
        path.setAttribute("stroke-linecap", "round");
        path.setAttribute("stroke-linejoin", "round");
      } else {
        path.setAttribute("fill", "currentColor");
      }
      svg.appendChild(path);
    }
    return svg;
  }

  function str(value, fallback) {
    return typeof value === "string" && value.trim() ? value : fallback;
  }

  // At most `max` UTF-16 units without cutting a character in half: a lone surrogate
  // would reach the server as an invalid character (the server repairs it, but the
  // visitor's emoji would be lost).
  function clip(text, max) {
    text = String(text);
    if (text.length <= max) {
      return text;
    }
    var cut = text.slice(0, max);
    var last = cut.charCodeAt(cut.length - 1);
    return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
  }

  // An error line with the business's phone, when the bot has one: the visitor always
  // has a way to reach the business, even when the assistant cannot answer.
  function withPhone(text) {
    var phone = state.config && str(state.config.phone, "");
    return phone ? text + " " + TEXT.callUs.replace("{phone}", phone) : text;
  }

  function storageKey(name) {
    return "tcai:" + client + ":" + bot + ":" + name;
  }

  function storageGet(name) {
    try {
      return window.localStorage.getItem(storageKey(name));
    } catch (e) {
      return null;
    }
  }

  function storageSet(name, value) {
    try {
      window.localStorage.setItem(storageKey(name), value);
    } catch (e) {
      /* storage blocked or full: the chat still works for this page view */
    }
  }

  function postToParent(message) {
    try {
      message.source = "tcai";
      window.parent.postMessage(message, hostOrigin);
    } catch (e) {
      /* parent gone */
    }
  }

  function parseRetryAfter(value) {
    if (!value) {
      return 0;
    }
    var seconds = 0;
    if (/^\s*\d+\s*$/.test(value)) {
      seconds = parseInt(value, 10);
    } else {
      var at = Date.parse(value);
      if (!isNaN(at)) {
        seconds = Math.ceil((at - Date.now()) / 1000);
      }
    }
    return Math.max(0, Math.min(seconds, MAX_COOLDOWN_S));
  }

  function safeHttpsUrl(raw) {
    if (typeof raw !== "string") {
      return null;
    }
    try {
      var url = new URL(raw);
      return url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  /* ---------- theme ---------- */

  function channel(hex) {
    var c = parseInt(hex, 16) / 255;
    return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  }

  function applyTheme(color) {
    if (typeof color !== "string" || !/^#[0-9a-fA-F]{6}$/.test(color)) {
      return;
    }
    var root = document.documentElement;
    root.style.setProperty("--tcai-primary", color);
    var lum =
      0.2126 * channel(color.slice(1, 3)) + 0.7152 * channel(color.slice(3, 5)) + 0.0722 * channel(color.slice(5, 7));
    var onWhite = 1.05 / (lum + 0.05);
    var onDark = (lum + 0.05) / 0.0616; // #111827
    root.style.setProperty("--tcai-on-primary", onWhite >= onDark ? "#ffffff" : "#111827");
  }

  /* ---------- transcript and session ---------- */

  function cleanSessionId(value) {
    return typeof value === "string" && SESSION_ID.test(value) ? value : "";
  }

  function cleanTranscript(value) {
    var list = [];
    if (!Array.isArray(value)) {
      return list;
    }
    for (var i = 0; i < value.length; i++) {
      var item = value[i];
      if (
        item &&
        typeof item === "object" &&
        (item.role === "user" || item.role === "bot") &&
        typeof item.text === "string"
      ) {
        list.push({ role: item.role, text: clip(item.text, MAX_TEXT) });
      }
    }
    return list.slice(-MAX_TRANSCRIPT);
  }

  /* This frame's own storage, when the browser lets a cross-site iframe have one. Returns
     whether it held a conversation. */
  function loadSession() {
    state.sessionId = cleanSessionId(storageGet("session"));
    var raw = storageGet("transcript");
    var list = [];
    if (raw) {
      try {
        list = cleanTranscript(JSON.parse(raw));
      } catch (e) {
        list = [];
      }
    }
    state.transcript = list;
    return Boolean(state.sessionId || state.transcript.length);
  }

  /* Our own storage wins when it works and holds a conversation; otherwise take the copy
     embed.js kept in the host page's storage (sent with `init`). */
  function adoptHostCopy(data) {
    if (loadSession()) {
      return;
    }
    var id = cleanSessionId(data.session_id);
    var list = cleanTranscript(data.transcript);
    if (!id && !list.length) {
      return;
    }
    state.sessionId = id;
    state.transcript = list;
    if (id) {
      storageSet("session", id);
    }
    storageSet("transcript", JSON.stringify(list));
  }

  function persist() {
    postToParent({ type: "persist", session_id: state.sessionId || null, transcript: state.transcript });
  }

  function remember(role, text) {
    state.transcript.push({ role: role, text: clip(text, MAX_TEXT) });
    if (state.transcript.length > MAX_TRANSCRIPT) {
      state.transcript = state.transcript.slice(-MAX_TRANSCRIPT);
    }
    storageSet("transcript", JSON.stringify(state.transcript));
    persist();
  }

  function saveSessionId(id) {
    if (cleanSessionId(id) && id !== state.sessionId) {
      state.sessionId = id;
      storageSet("session", id);
      persist();
    }
  }

  /* ---------- message list ---------- */

  function nearBottom() {
    var list = ui.messages;
    return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  }

  function scrollToBottom() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function addMessage(role, text) {
    var bubble = el("div", "tcai-msg tcai-msg-" + role, text);
    ui.messages.insertBefore(bubble, ui.typing.parentNode ? ui.typing : null);
    scrollToBottom();
    return bubble;
  }

  function showTyping(on) {
    if (on) {
      ui.messages.appendChild(ui.typing);
      scrollToBottom();
    } else if (ui.typing.parentNode) {
      ui.typing.parentNode.removeChild(ui.typing);
    }
  }

  function clearError() {
    var old = ui.messages.querySelectorAll(".tcai-error");
    for (var i = 0; i < old.length; i++) {
      old[i].parentNode.removeChild(old[i]);
    }
  }

  function showError(text, withRetry) {
    clearError();
    var line = el("div", "tcai-error");
    line.setAttribute("role", "alert");
    line.appendChild(el("span", "tcai-error-text", text));
    if (withRetry) {
      var retry = el("button", "tcai-retry", TEXT.retry);
      retry.type = "button";
      retry.addEventListener("click", function () {
        if (state.lastMessage) {
          send(state.lastMessage, true);
        }
      });
      line.appendChild(retry);
    }
    ui.messages.appendChild(line);
    scrollToBottom();
    return line;
  }

  function renderActions(actions) {
    if (!Array.isArray(actions)) {
      return;
    }
    for (var i = 0; i < actions.length; i++) {
      var action = actions[i];
      if (!action || typeof action !== "object") {
        continue;
      }
      if (action.type === "booking_redirect") {
        renderBookingLink(action);
      } else if (action.type === "booking_requested") {
        var banner = el("div", "tcai-request-received");
        banner.setAttribute("role", "status");
        banner.appendChild(icon("check", true));
        banner.appendChild(el("span", null, TEXT.requestReceived));
        ui.messages.appendChild(banner);
      }
    }
    scrollToBottom();
  }

  function renderBookingLink(action) {
    var href = safeHttpsUrl(action.url);
    if (!href) {
      return;
    }
    var rawUrl = action.url;
    var link = el("a", "tcai-booking");
    link.href = href;
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    link.appendChild(el("span", null, str(action.label, TEXT.bookDefault)));
    link.appendChild(icon("external", true));
    link.addEventListener("click", function () {
      trackBookingClick(rawUrl);
    });
    var row = el("div", "tcai-action");
    row.appendChild(link);
    ui.messages.appendChild(row);
  }

  function trackBookingClick(url) {
    try {
      fetch(apiOrigin + "/api/booking/click", {
        method: "POST",
        keepalive: true,
        credentials: "omit",
        headers: { Authorization: "Bearer " + state.token, "Content-Type": "application/json" },
        body: JSON.stringify({ session_id: state.sessionId || null, url: url })
      }).catch(function () {
        /* fire and forget */
      });
    } catch (e) {
      /* fire and forget */
    }
  }

  /* ---------- quick replies ---------- */

  function setQuickReplies(list) {
    var box = ui.quick;
    while (box.firstChild) {
      box.removeChild(box.firstChild);
    }
    var count = 0;
    if (Array.isArray(list) && !state.paused && !state.blocked) {
      for (var i = 0; i < list.length && count < MAX_QUICK; i++) {
        var item = list[i];
        var label = typeof item === "string" ? item : item && str(item.label, str(item.prompt, ""));
        var prompt = typeof item === "string" ? item : item && str(item.prompt, str(item.label, ""));
        if (!label || !prompt) {
          continue;
        }
        var button = el("button", "tcai-quick", label);
        button.type = "button";
        button.addEventListener("click", makeQuickHandler(prompt));
        box.appendChild(button);
        count++;
      }
    }
    box.hidden = count === 0;
  }

  function makeQuickHandler(prompt) {
    return function () {
      send(prompt, false);
      ui.input.focus();
    };
  }

  /* ---------- input state ---------- */

  function refreshControls() {
    var cooling = state.cooldownUntil > Date.now();
    var locked = state.paused || state.blocked;
    ui.input.disabled = locked;
    ui.send.disabled = locked || state.busy || cooling;
    ui.messages.setAttribute("aria-busy", state.busy ? "true" : "false");
  }

  function setBusy(on) {
    state.busy = on;
    refreshControls();
  }

  function startCooldown(seconds, errorLine) {
    if (!seconds) {
      return;
    }
    state.cooldownUntil = Date.now() + seconds * 1000;
    clearTimeout(state.cooldownTimer);
    state.cooldownTimer = setTimeout(function () {
      state.cooldownUntil = 0;
      if (errorLine && errorLine.parentNode) {
        errorLine.parentNode.removeChild(errorLine);
      }
      refreshControls();
    }, seconds * 1000);
    refreshControls();
  }

  function setPaused(message) {
    state.paused = true;
    ui.pausedText.textContent = str(message, str(state.config.paused_message, TEXT.paused));
    ui.paused.hidden = false;
    setQuickReplies(null);
    refreshControls();
  }

  function clearPaused() {
    state.paused = false;
    ui.paused.hidden = true;
    refreshControls();
  }

  /* ---------- token ---------- */

  function setToken(token, config) {
    if (typeof token === "string" && token) {
      state.token = token;
    }
    if (config && typeof config === "object") {
      state.config = config;
      var expires = Date.parse(config.token_expires_at);
      state.tokenExpiresAt = isNaN(expires) ? 0 : expires;
      applyTheme(config.primary_color);
    }
  }

  function resolveTokenWaiters(ok) {
    var waiters = state.tokenWaiters;
    state.tokenWaiters = [];
    state.tokenRequested = false;
    for (var i = 0; i < waiters.length; i++) {
      waiters[i](ok);
    }
  }

  function requestToken() {
    return new Promise(function (resolve) {
      var done = false;
      var timer = setTimeout(function () {
        var at = state.tokenWaiters.indexOf(finish);
        if (at !== -1) {
          state.tokenWaiters.splice(at, 1);
        }
        if (!state.tokenWaiters.length) {
          state.tokenRequested = false;
        }
        finish(false);
      }, TOKEN_WAIT_MS);
      function finish(ok) {
        if (!done) {
          done = true;
          clearTimeout(timer);
          resolve(ok);
        }
      }
      state.tokenWaiters.push(finish);
      if (!state.tokenRequested) {
        state.tokenRequested = true;
        postToParent({ type: "token-expired" });
      }
    });
  }

  function ensureFreshToken() {
    if (state.tokenExpiresAt && Date.now() > state.tokenExpiresAt - TOKEN_EARLY_REFRESH_MS) {
      return requestToken();
    }
    return Promise.resolve(true);
  }

  /* ---------- chat ---------- */

  function send(text, isRetry) {
    if (state.busy || state.paused || state.blocked || state.cooldownUntil > Date.now()) {
      return false;
    }
    text = clip(String(text || "").trim(), MAX_MESSAGE);
    if (!text) {
      return false;
    }
    clearError();
    setQuickReplies(null);
    if (!isRetry) {
      addMessage("user", text);
      remember("user", text);
    }
    state.lastMessage = text;
    setBusy(true);
    ensureFreshToken()
      .then(function () {
        return chat(text, true);
      })
      .catch(function () {
        showTyping(false);
        showError(withPhone(TEXT.network), true);
      })
      .then(function () {
        setBusy(false);
      });
    return true;
  }

  function chat(text, mayRefreshToken) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = null;
    function arm() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (controller) {
          controller.abort();
        }
      }, CHAT_TIMEOUT_MS);
    }
    var stream = { bubble: null, text: "" };
    var payload = { message: text };
    if (state.sessionId) {
      payload.session_id = state.sessionId;
    }
    showTyping(true);
    arm();

    return fetch(apiOrigin + "/api/chat/" + encodeURIComponent(client) + "/" + encodeURIComponent(bot), {
      method: "POST",
      credentials: "omit",
      cache: "no-store",
      headers: {
        Authorization: "Bearer " + state.token,
        "Content-Type": "application/json",
        Accept: "text/event-stream"
      },
      body: JSON.stringify(payload),
      signal: controller ? controller.signal : undefined
    })
      .then(function (response) {
        var type = (response.headers.get("Content-Type") || "").toLowerCase();
        var retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
        if (response.ok && type.indexOf("text/event-stream") !== -1 && response.body && response.body.getReader) {
          return readStream(response, stream, arm).then(function (outcome) {
            outcome.retryAfter = retryAfter;
            return outcome;
          });
        }
        return response.text().then(function (raw) {
          var data = null;
          try {
            data = JSON.parse(raw);
          } catch (e) {
            data = null;
          }
          return classify(response.status, data, retryAfter);
        });
      })
      .then(
        function (outcome) {
          clearTimeout(timer);
          return settle(outcome, text, stream, mayRefreshToken);
        },
        function () {
          clearTimeout(timer);
          discardPartial(stream);
          showTyping(false);
          showError(withPhone(TEXT.network), true);
        }
      );
  }

  function classify(status, data, retryAfter) {
    if (data && typeof data === "object") {
      if (data.error && typeof data.error === "object") {
        return {
          kind: "error",
          status: status,
          code: typeof data.error.code === "string" ? data.error.code : "",
          message: typeof data.error.message === "string" ? data.error.message : "",
          retryAfter: retryAfter
        };
      }
      if (typeof data.reply === "string" || data.status === "paused") {
        return { kind: "reply", status: status, reply: data, retryAfter: retryAfter };
      }
    }
    return { kind: "error", status: status, code: "", message: "", retryAfter: retryAfter };
  }

  function readStream(response, stream, arm) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder("utf-8");
    var buffer = "";
    var result = null;

    function handleEvent(block) {
      var lines = block.split("\n");
      var event = "message";
      var data = [];
      for (var i = 0; i < lines.length; i++) {
        var line = lines[i];
        if (!line || line.charAt(0) === ":") {
          continue;
        }
        var colon = line.indexOf(":");
        var field = colon === -1 ? line : line.slice(0, colon);
        var value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.charAt(0) === " ") {
          value = value.slice(1);
        }
        if (field === "event") {
          event = value;
        } else if (field === "data") {
          data.push(value);
        }
      }
      if (!data.length) {
        return;
      }
      var parsed = null;
      try {
        parsed = JSON.parse(data.join("\n"));
      } catch (e) {
        return;
      }
      if (event === "chunk" && parsed && typeof parsed.text === "string") {
        appendChunk(stream, parsed.text);
      } else if (event === "done" && parsed && typeof parsed === "object") {
        result = { kind: "reply", status: response.status, reply: parsed };
      } else if (event === "error" && parsed && typeof parsed === "object") {
        result = classify(response.status, parsed, 0);
      }
    }

    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) {
          buffer += decoder.decode();
          if (buffer.trim()) {
            handleEvent(buffer.replace(/\r\n?/g, "\n"));
          }
          return finish();
        }
        arm();
        buffer += decoder.decode(chunk.value, { stream: true });
        buffer = buffer.replace(/\r\n?/g, "\n");
        var cut = buffer.indexOf("\n\n");
        while (cut !== -1) {
          handleEvent(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
          if (result) {
            try {
              reader.cancel();
            } catch (e) {
              /* ignore */
            }
            return finish();
          }
          cut = buffer.indexOf("\n\n");
        }
        return pump();
      });
    }

    function finish() {
      if (result) {
        return result;
      }
      if (stream.text) {
        // The stream ended without its `done` event: keep what the visitor already read.
        return { kind: "reply", status: response.status, reply: { reply: stream.text } };
      }
      throw new Error("stream ended early");
    }

    return pump();
  }

  function appendChunk(stream, text) {
    if (!text) {
      return;
    }
    var follow = nearBottom();
    showTyping(false);
    if (!stream.bubble) {
      stream.bubble = addMessage("bot", "");
    }
    stream.text += text;
    stream.bubble.textContent = stream.text;
    if (follow) {
      scrollToBottom();
    }
  }

  function discardPartial(stream) {
    if (stream.bubble && stream.bubble.parentNode) {
      stream.bubble.parentNode.removeChild(stream.bubble);
    }
    stream.bubble = null;
    stream.text = "";
  }

  function settle(outcome, text, stream, mayRefreshToken) {
    showTyping(false);
    if (outcome.kind === "reply") {
      handleReply(outcome.reply, stream, outcome.retryAfter);
      return null;
    }
    discardPartial(stream);
    var code = outcome.code;
    if (code === "token_expired" || code === "invalid_token" || (!code && outcome.status === 401)) {
      if (mayRefreshToken) {
        return requestToken().then(function (ok) {
          if (ok) {
            return chat(text, false);
          }
          showError(TEXT.expired, false);
          return null;
        });
      }
      showError(TEXT.expired, false);
    } else if (code === "rate_limited" || (!code && outcome.status === 429)) {
      var line = showError(str(outcome.message, TEXT.rateLimited), false);
      startCooldown(outcome.retryAfter, line);
    } else if (code === "origin_not_allowed") {
      state.blocked = true;
      setQuickReplies(null);
      refreshControls();
      showError(str(outcome.message, TEXT.notAllowed), false);
    } else if (code === "invalid_message" || outcome.status === 413) {
      showError(str(outcome.message, TEXT.invalid), false);
    } else {
      showError(withPhone(TEXT.generic), true);
    }
    return null;
  }

  function handleReply(reply, stream, retryAfter) {
    saveSessionId(reply.session_id);
    var text = typeof reply.reply === "string" ? reply.reply : "";
    if (reply.status === "paused") {
      discardPartial(stream);
      setPaused(str(text, state.config.paused_message));
      return;
    }
    if (text) {
      if (stream.bubble) {
        stream.bubble.textContent = text;
      } else {
        stream.bubble = addMessage("bot", text);
      }
    } else if (stream.text) {
      text = stream.text;
    }
    if (text) {
      remember("bot", text);
    }
    renderActions(reply.actions);
    setQuickReplies(reply.quick_replies);
    if (reply.status === "limit_reached") {
      startCooldown(retryAfter, null);
    }
    scrollToBottom();
  }

  /* ---------- open / close ---------- */

  function openPanel() {
    if (state.open) {
      return;
    }
    state.open = true;
    postToParent({ type: "resize", open: true });
    ui.root.classList.add("tcai-is-open");
    ui.panel.hidden = false;
    ui.launcher.hidden = true;
    ui.launcher.setAttribute("aria-expanded", "true");
    scrollToBottom();
    setTimeout(function () {
      scrollToBottom();
      if (!ui.input.disabled) {
        ui.input.focus();
      } else {
        ui.close.focus();
      }
    }, 30);
  }

  function closePanel() {
    if (!state.open) {
      return;
    }
    state.open = false;
    ui.root.classList.remove("tcai-is-open");
    ui.panel.hidden = true;
    ui.launcher.hidden = false;
    ui.launcher.setAttribute("aria-expanded", "false");
    postToParent({ type: "resize", open: false });
    ui.launcher.focus();
  }

  /* ---------- building the UI ---------- */

  function autosize() {
    var input = ui.input;
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 132) + "px";
  }

  function build() {
    var config = state.config;
    var name = str(config.name, "us");
    var root = document.getElementById("tcai-root") || document.body.appendChild(el("div"));
    ui.root = root;
    root.className = "tcai-root" + (config.position === "bottom-left" ? " tcai-pos-left" : "");

    var launcher = el("button", "tcai-launcher");
    launcher.type = "button";
    launcher.setAttribute("aria-label", "Open chat with " + name);
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-controls", "tcai-panel");
    launcher.appendChild(icon("chat", false));
    launcher.addEventListener("click", openPanel);
    ui.launcher = launcher;

    var panel = el("div", "tcai-panel");
    panel.id = "tcai-panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-labelledby", "tcai-title");
    ui.panel = panel;

    var header = el("div", "tcai-header");
    var avatar = el("div", "tcai-avatar", name.trim().charAt(0).toUpperCase() || "?");
    avatar.setAttribute("aria-hidden", "true");
    var heading = el("div", "tcai-heading");
    var title = el("h1", "tcai-title", name);
    title.id = "tcai-title";
    heading.appendChild(title);
    heading.appendChild(el("p", "tcai-subtitle", TEXT.subtitle));
    var close = el("button", "tcai-close");
    close.type = "button";
    close.setAttribute("aria-label", TEXT.close);
    close.appendChild(icon("close", true));
    close.addEventListener("click", closePanel);
    ui.close = close;
    header.appendChild(avatar);
    header.appendChild(heading);
    header.appendChild(close);
    panel.appendChild(header);

    var disclaimer = str(config.disclaimer, "");
    if (disclaimer) {
      panel.appendChild(el("p", "tcai-disclaimer", disclaimer));
    }

    var messages = el("div", "tcai-messages");
    messages.setAttribute("role", "log");
    messages.setAttribute("aria-live", "polite");
    messages.setAttribute("aria-label", "Conversation");
    messages.tabIndex = 0;
    ui.messages = messages;
    panel.appendChild(messages);

    var typing = el("div", "tcai-typing");
    typing.setAttribute("role", "status");
    typing.setAttribute("aria-label", TEXT.typing);
    typing.appendChild(el("span"));
    typing.appendChild(el("span"));
    typing.appendChild(el("span"));
    ui.typing = typing;

    var quick = el("div", "tcai-quick-replies");
    quick.setAttribute("role", "group");
    quick.setAttribute("aria-label", TEXT.quickGroup);
    quick.hidden = true;
    ui.quick = quick;
    panel.appendChild(quick);

    var paused = el("div", "tcai-paused");
    paused.setAttribute("role", "status");
    paused.hidden = true;
    ui.pausedText = el("span", null, "");
    paused.appendChild(ui.pausedText);
    ui.paused = paused;
    panel.appendChild(paused);

    var form = el("form", "tcai-composer");
    form.noValidate = true;
    var label = el("label", "tcai-sr-only", "Message " + name);
    label.htmlFor = "tcai-input";
    var input = el("textarea", "tcai-input");
    input.id = "tcai-input";
    input.rows = 1;
    input.maxLength = MAX_MESSAGE;
    input.placeholder = TEXT.placeholder;
    input.setAttribute("autocomplete", "off");
    input.setAttribute("enterkeyhint", "send");
    ui.input = input;
    var sendButton = el("button", "tcai-send");
    sendButton.type = "submit";
    sendButton.setAttribute("aria-label", TEXT.send);
    sendButton.appendChild(icon("send", false));
    ui.send = sendButton;
    form.appendChild(label);
    form.appendChild(input);
    form.appendChild(sendButton);
    panel.appendChild(form);

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (send(input.value, false)) {
        input.value = "";
        autosize();
      }
      input.focus();
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        if (send(input.value, false)) {
          input.value = "";
          autosize();
        }
      }
    });
    input.addEventListener("input", autosize);
    document.addEventListener("keydown", function (event) {
      if ((event.key === "Escape" || event.key === "Esc") && state.open) {
        event.preventDefault();
        closePanel();
      }
    });

    root.appendChild(launcher);
    root.appendChild(panel);

    // Conversation so far: the welcome line, then the stored display copy.
    var welcome = str(config.welcome_message, "");
    if (welcome) {
      addMessage("bot", welcome);
    }
    var visitorSpoke = false;
    for (var i = 0; i < state.transcript.length; i++) {
      addMessage(state.transcript[i].role, state.transcript[i].text);
      visitorSpoke = visitorSpoke || state.transcript[i].role === "user";
    }
    if (config.status === "paused") {
      setPaused(config.paused_message);
    } else if (!visitorSpoke) {
      setQuickReplies(config.quick_replies);
    }
    refreshControls();
  }

  /* ---------- handshake with embed.js ---------- */

  function onMessage(event) {
    try {
      if (event.origin !== hostOrigin || event.source !== window.parent) {
        return;
      }
      var data = event.data;
      if (!data || typeof data !== "object" || data.source !== "tcai" || typeof data.type !== "string") {
        return;
      }
      if (data.type === "init" || data.type === "token") {
        if (typeof data.token !== "string" || !data.token) {
          return;
        }
        var config = data.config && typeof data.config === "object" ? data.config : null;
        setToken(data.token, config);
        if (!state.initialised) {
          state.initialised = true;
          adoptHostCopy(data); // only `init` carries the host page's copy
          build();
        } else if (config) {
          if (config.status === "paused") {
            setPaused(config.paused_message);
          } else if (state.paused && config.status === "active") {
            clearPaused();
          }
        }
        resolveTokenWaiters(true);
      } else if (data.type === "token-error") {
        resolveTokenWaiters(false);
      }
    } catch (e) {
      /* a bad message must not break the widget */
    }
  }

  function start() {
    params = new URLSearchParams(window.location.search);
    client = params.get("client") || "";
    bot = params.get("bot") || "";
    var host = params.get("host") || "";
    var parsedHost;
    try {
      parsedHost = new URL(host);
    } catch (e) {
      return;
    }
    if (!client || !bot || parsedHost.origin !== host || !/^https?:$/.test(parsedHost.protocol)) {
      return;
    }
    if (window.parent === window) {
      return; // only meaningful inside the host page's iframe
    }
    hostOrigin = host;
    window.addEventListener("message", onMessage, false);
    var attempts = 0;
    (function announce() {
      if (state.initialised || attempts >= 10) {
        return;
      }
      attempts++;
      postToParent({ type: "ready" });
      setTimeout(announce, 1000);
    })();
  }

  try {
    start();
  } catch (e) {
    /* nothing to show */
  }
})();
