/*
 * tcai widget loader. Runs on the business's (host) page.
 *
 * Owns: finding its own <script> tag, fetching the bot's public config and widget token,
 * creating the fixed-position iframe and sizing it when the chat opens or closes, handing
 * the token to the iframe over postMessage (never in a URL), and keeping the visitor's
 * session id and display transcript in the host page's (first-party) localStorage for the
 * iframe, whose own storage browsers often block as third-party storage.
 * Deliberately does not: touch the host page's DOM beyond one iframe, inject any <style>,
 * throw, or show anything at all when the daemon is unreachable or refuses this origin.
 */
(function () {
  "use strict";

  var CONFIG_TIMEOUT_MS = 8000;
  var FRAME_READY_TIMEOUT_MS = 20000;
  var EDGE = "16px";
  var LAUNCHER_SIZE = "72px";
  var PANEL_WIDTH = "380px";
  var PANEL_HEIGHT = "620px";
  var NARROW_MAX = 480;
  var Z_INDEX = "2147483000";
  var REGISTRY = "__tcaiWidgets";
  var SESSION_ID = /^[A-Za-z0-9_-]{8,64}$/;
  var MAX_TRANSCRIPT = 50;
  var MAX_TEXT = 4000;

  function warn(text) {
    try {
      if (window.console && typeof window.console.warn === "function") {
        window.console.warn("[tcai widget] " + text);
      }
    } catch (e) {
      /* nothing else we can do */
    }
  }

  function registry() {
    var reg = window[REGISTRY];
    if (!reg || typeof reg !== "object") {
      reg = {};
      try {
        Object.defineProperty(window, REGISTRY, { value: reg, enumerable: false });
      } catch (e) {
        window[REGISTRY] = reg;
      }
    }
    return reg;
  }

  function keyOf(script) {
    return (script.getAttribute("data-client") || "") + "/" + (script.getAttribute("data-bot") || "");
  }

  function findScript() {
    var current = document.currentScript;
    if (current && current.getAttribute && current.getAttribute("data-bot")) {
      return current;
    }
    // currentScript is null in some loaders; take the first snippet not yet handled.
    var candidates = document.querySelectorAll('script[src*="/widget/embed.js"][data-bot]');
    var reg = registry();
    for (var i = 0; i < candidates.length; i++) {
      if (!reg[keyOf(candidates[i])]) {
        return candidates[i];
      }
    }
    return null;
  }

  function whenBodyReady(callback) {
    if (document.body) {
      callback();
      return;
    }
    document.addEventListener("DOMContentLoaded", function onReady() {
      document.removeEventListener("DOMContentLoaded", onReady);
      callback();
    });
  }

  function describeError(status, body) {
    if (body && body.error && typeof body.error.code === "string") {
      return body.error.code + (typeof body.error.message === "string" ? ": " + body.error.message : "");
    }
    return "HTTP " + status;
  }

  function fetchConfig(url) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () {
      if (controller) {
        controller.abort();
      }
    }, CONFIG_TIMEOUT_MS);
    return fetch(url, {
      method: "GET",
      mode: "cors",
      credentials: "omit",
      cache: "no-store",
      headers: { Accept: "application/json" },
      signal: controller ? controller.signal : undefined
    })
      .then(function (response) {
        return response.json().then(
          function (body) {
            return { status: response.status, ok: response.ok, body: body };
          },
          function () {
            return { status: response.status, ok: false, body: null };
          }
        );
      })
      .then(function (result) {
        clearTimeout(timer);
        var body = result.body;
        if (!result.ok || !body || typeof body !== "object" || typeof body.token !== "string" || !body.token) {
          throw new Error("config refused (" + describeError(result.status, body) + ")");
        }
        return body;
      }, function (err) {
        clearTimeout(timer);
        var reason = err && err.name === "AbortError" ? "timed out" : "network error";
        throw new Error("config request failed (" + reason + ")");
      });
  }

  /* The transcript as stored or received: at most the last MAX_TRANSCRIPT entries, each
     exactly {role: "user"|"bot", text: string of at most MAX_TEXT chars}; others dropped. */
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
        typeof item.text === "string" &&
        item.text.length <= MAX_TEXT
      ) {
        list.push({ role: item.role, text: item.text });
      }
    }
    return list.slice(-MAX_TRANSCRIPT);
  }

  function cleanSessionId(value) {
    return typeof value === "string" && SESSION_ID.test(value) ? value : null;
  }

  function setStyles(el, styles) {
    for (var name in styles) {
      if (Object.prototype.hasOwnProperty.call(styles, name)) {
        el.style.setProperty(name, styles[name], "important");
      }
    }
  }

  function start(script) {
    var daemonOrigin = new URL(script.src, document.baseURI).origin;
    var client = script.getAttribute("data-client") || "";
    var bot = script.getAttribute("data-bot") || "";
    var preview = script.getAttribute("data-preview");
    if (!client || !bot) {
      warn("missing data-client or data-bot on the script tag; widget not loaded.");
      return;
    }
    var reg = registry();
    var key = client + "/" + bot;
    if (reg[key]) {
      return; // loaded twice: the first copy owns the widget
    }
    reg[key] = true;

    var configUrl =
      daemonOrigin +
      "/api/widget/config/" +
      encodeURIComponent(client) +
      "/" +
      encodeURIComponent(bot) +
      (preview ? "?preview=" + encodeURIComponent(preview) : "");

    var state = { config: null, frame: null, ready: false, open: false, refreshing: null };
    var storagePrefix = "tcai:" + client + ":" + bot + ":";

    function storageGet(name) {
      try {
        return window.localStorage.getItem(storagePrefix + name);
      } catch (e) {
        return null; // storage blocked on the host page too: the chat still works
      }
    }

    function storageSet(name, value) {
      try {
        if (value === null) {
          window.localStorage.removeItem(storagePrefix + name);
        } else {
          window.localStorage.setItem(storagePrefix + name, value);
        }
      } catch (e) {
        /* storage blocked or full */
      }
    }

    function loadConversation() {
      var transcript = [];
      var raw = storageGet("transcript");
      if (raw) {
        try {
          transcript = cleanTranscript(JSON.parse(raw));
        } catch (e) {
          transcript = [];
        }
      }
      return { session_id: cleanSessionId(storageGet("session")), transcript: transcript };
    }

    function saveConversation(data) {
      if (data.session_id === null || data.session_id === "") {
        storageSet("session", null);
      } else if (cleanSessionId(data.session_id)) {
        storageSet("session", data.session_id);
      }
      if (Array.isArray(data.transcript)) {
        var transcript = cleanTranscript(data.transcript);
        storageSet("transcript", transcript.length ? JSON.stringify(transcript) : null);
      }
    }

    function post(message) {
      try {
        if (state.frame && state.frame.contentWindow) {
          message.source = "tcai";
          state.frame.contentWindow.postMessage(message, daemonOrigin);
        }
      } catch (e) {
        /* the frame went away */
      }
    }

    function layout() {
      var frame = state.frame;
      if (!frame) {
        return;
      }
      var side = state.config && state.config.position === "bottom-left" ? "left" : "right";
      var other = side === "left" ? "right" : "left";
      var base = {
        position: "fixed",
        border: "0",
        margin: "0",
        padding: "0",
        background: "transparent",
        "color-scheme": "light",
        "z-index": Z_INDEX,
        "max-width": "none",
        "min-width": "0",
        "min-height": "0",
        display: "block",
        visibility: state.ready ? "visible" : "hidden",
        top: "auto"
      };
      setStyles(frame, base);
      if (!state.open) {
        setStyles(frame, {
          width: LAUNCHER_SIZE,
          height: LAUNCHER_SIZE,
          "max-height": "none",
          bottom: EDGE,
          "border-radius": "0",
          "box-shadow": "none"
        });
        frame.style.setProperty(side, EDGE, "important");
        frame.style.setProperty(other, "auto", "important");
      } else if (window.innerWidth < NARROW_MAX) {
        setStyles(frame, {
          width: "100vw",
          height: "100vh",
          "max-height": "none",
          top: "0",
          bottom: "0",
          left: "0",
          right: "0",
          "border-radius": "0",
          "box-shadow": "none"
        });
        if (window.CSS && CSS.supports && CSS.supports("height", "100dvh")) {
          frame.style.setProperty("height", "100dvh", "important");
        }
      } else {
        setStyles(frame, {
          width: PANEL_WIDTH,
          height: PANEL_HEIGHT,
          "max-height": "calc(100vh - 32px)",
          "max-width": "calc(100vw - 32px)",
          bottom: EDGE,
          "border-radius": "16px",
          "box-shadow": "0 12px 48px rgba(15, 23, 42, 0.22), 0 2px 8px rgba(15, 23, 42, 0.12)"
        });
        frame.style.setProperty(side, EDGE, "important");
        frame.style.setProperty(other, "auto", "important");
      }
    }

    function refreshToken() {
      if (state.refreshing) {
        return state.refreshing;
      }
      state.refreshing = fetchConfig(configUrl)
        .then(function (config) {
          state.config = config;
          post({ type: "token", token: config.token, config: config });
        })
        .catch(function (err) {
          warn("could not refresh the widget token: " + (err && err.message ? err.message : err));
          post({ type: "token-error" });
        })
        .then(function () {
          state.refreshing = null;
        });
      return state.refreshing;
    }

    function onMessage(event) {
      try {
        if (!state.frame || event.origin !== daemonOrigin || event.source !== state.frame.contentWindow) {
          return;
        }
        var data = event.data;
        if (!data || typeof data !== "object" || data.source !== "tcai" || typeof data.type !== "string") {
          return;
        }
        if (data.type === "ready") {
          state.ready = true;
          layout();
          var saved = loadConversation();
          post({
            type: "init",
            token: state.config.token,
            config: state.config,
            session_id: saved.session_id,
            transcript: saved.transcript
          });
        } else if (data.type === "resize") {
          state.open = data.open === true;
          layout();
        } else if (data.type === "token-expired") {
          refreshToken();
        } else if (data.type === "persist") {
          saveConversation(data);
        }
      } catch (e) {
        /* never throw into the host page */
      }
    }

    function mount() {
      try {
        var config = state.config;
        var name = typeof config.name === "string" && config.name ? config.name : "us";
        var frame = document.createElement("iframe");
        frame.id = "tcai-frame-" + bot;
        frame.className = "tcai-frame";
        frame.title = "Chat with " + name;
        frame.setAttribute("frameborder", "0");
        frame.setAttribute("scrolling", "no");
        frame.src =
          daemonOrigin +
          "/widget/frame.html?client=" +
          encodeURIComponent(client) +
          "&bot=" +
          encodeURIComponent(bot) +
          "&host=" +
          encodeURIComponent(window.location.origin);
        state.frame = frame;
        layout();
        window.addEventListener("message", onMessage, false);
        window.addEventListener(
          "resize",
          function () {
            try {
              if (state.open) {
                layout();
              }
            } catch (e) {
              /* ignore */
            }
          },
          { passive: true }
        );
        document.body.appendChild(frame);
        setTimeout(function () {
          try {
            if (!state.ready && frame.parentNode) {
              // The frame never answered (blocked by CSP frame-src, or failed to load):
              // leave no invisible box over the host page.
              frame.parentNode.removeChild(frame);
              state.frame = null;
              warn("the chat frame did not load; widget removed.");
            }
          } catch (e) {
            /* ignore */
          }
        }, FRAME_READY_TIMEOUT_MS);
      } catch (e) {
        warn("could not create the chat frame.");
      }
    }

    fetchConfig(configUrl).then(
      function (config) {
        state.config = config;
        whenBodyReady(mount);
      },
      function (err) {
        reg[key] = false;
        warn("widget not shown: " + (err && err.message ? err.message : err));
      }
    );
  }

  try {
    if (typeof window.fetch !== "function" || typeof window.postMessage !== "function" || typeof URL !== "function") {
      return;
    }
    var script = findScript();
    if (!script || !script.src) {
      warn("could not find the embed script tag; widget not loaded.");
      return;
    }
    start(script);
  } catch (e) {
    warn("widget failed to start.");
  }
})();
