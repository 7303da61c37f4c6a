/*
 * demo.js: the demo customer widget (web/templates/demo.templ), built only on chat-service.js.
 *
 * Everything that comes from the chat (names, messages, notices, UserData) is rendered with
 * textContent, never as HTML. Links are made only for http(s) URLs; line breaks stay (CSS).
 */
(function () {
  'use strict';

  const TYPING_EVERY = 2000; // ms between "still typing" notifications while the customer types
  const TYPING_IDLE = 4000; // ms without a keystroke before we say the customer stopped typing
  const AGENT_TYPING_TTL = 10000; // ms after which a stale "is typing" line is hidden anyway

  const $ = function (id) { return document.getElementById(id); };
  const el = {
    status: $('status'),
    startSection: $('start-section'),
    startForm: $('start-form'),
    name: $('name'),
    subject: $('subject'),
    start: $('start'),
    chatSection: $('chat-section'),
    queue: $('queue'),
    transcript: $('transcript-list'),
    typing: $('typing'),
    messageForm: $('message-form'),
    message: $('message'),
    send: $('send'),
    notices: $('notices'),
    noticesSection: $('notices-section'),
    surveyCta: $('survey-cta'),
    surveyLink: $('survey-link'),
    cobrowseForm: $('cobrowse-form'),
    cobrowseId: $('cobrowse-id'),
    cobrowseShare: $('cobrowse-share'),
    leave: $('leave'),
  };

  const NOTICE_MAX = 200; // characters of an unknown notice shown; the whole is in the title

  let session = null;
  let surveyURL = null; // the after-chat survey, offered once the chat has ended

  function setStatus(text) {
    el.status.textContent = text;
  }

  function describe(event) {
    return event && event.error ? event.error.description || event.error.code : 'unknown error';
  }

  function httpUrl(text) {
    try {
      const u = new URL(text, location.href);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
    } catch (_) {
      return null;
    }
  }

  function link(href, text) {
    const a = document.createElement('a');
    a.href = href;
    a.textContent = text;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    return a;
  }

  // linkified returns text as nodes, with its http(s) URLs as links. Sentence punctuation after a
  // URL is not part of it, unless balanced inside it (…/Go_(programming_language)).
  function linkified(text) {
    const frag = document.createDocumentFragment();
    const re = /\bhttps?:\/\/[^\s<>"'`]+/gi;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      let url = m[0];
      for (;;) {
        const c = url.slice(-1);
        const unbalanced = (open, close) => c === close && url.split(open).length < url.split(close).length;
        if ('.,;:!?*'.includes(c) || unbalanced('(', ')') || unbalanced('[', ']') || unbalanced('{', '}')) url = url.slice(0, -1);
        else break;
      }
      const href = httpUrl(url);
      if (!href || !/^https?:\/\/[^/]/i.test(url)) continue;
      if (m.index > last) frag.appendChild(document.createTextNode(text.slice(last, m.index)));
      frag.appendChild(link(href, url));
      last = m.index + url.length;
      re.lastIndex = last;
    }
    if (last < text.length) frag.appendChild(document.createTextNode(text.slice(last)));
    return frag;
  }

  function setChatEnabled(on) {
    [el.message, el.send, el.cobrowseId, el.cobrowseShare, el.leave].forEach(function (c) { c.disabled = !on; });
  }

  function showStart(label) {
    el.startSection.hidden = false;
    el.start.disabled = false;
    el.start.textContent = 'Start chat';
    document.getElementById('start-heading').textContent = label || 'Start a chat';
  }

  /* ---------- transcript rendering */

  function partyName(party) {
    if (!party) return 'System';
    if (party.type.client) return party.name || 'You';
    return party.name || (party.type.external ? 'System' : 'Agent');
  }

  function addLine(ev, className, nameText, bodyNode) {
    const li = document.createElement('li');
    li.className = className + (ev.restored ? ' restored' : '');
    li.dataset.index = String(ev.index);
    if (nameText) {
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = nameText + ': ';
      li.appendChild(who);
    }
    const body = document.createElement('span');
    body.className = 'text';
    body.appendChild(bodyNode);
    li.appendChild(body);
    const time = document.createElement('time');
    const d = new Date(ev.timestamp);
    time.dateTime = d.toISOString();
    time.textContent = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    li.appendChild(time);
    el.transcript.appendChild(li);
    li.scrollIntoView({ block: 'nearest' });
  }

  function onMessage(ev) {
    const c = ev.content;
    if (c.type === 'notice') {
      addLine(ev, 'system', '', linkified(c.text));
      return;
    }
    const href = c.type === 'url' ? httpUrl(c.text) : null;
    const body = href ? link(href, c.text) : linkified(c.text);
    const who = ev.party && ev.party.type.client ? 'msg mine' : 'msg theirs';
    addLine(ev, who, partyName(ev.party), body);
    if (ev.party && !ev.party.type.client) hideAgentTyping();
  }

  function onAgentConnected(ev) {
    el.queue.textContent = '';
    addLine(ev, 'event', '', document.createTextNode(partyName(ev.party) + ' joined the chat.'));
    if (!ev.restored) setStatus('You are chatting with ' + partyName(ev.party) + '.');
  }

  function onAgentDisconnected(ev) {
    addLine(ev, 'event', '', document.createTextNode(partyName(ev.party) + ' left the chat.'));
  }

  /* ---------- agent typing */

  let typingTimer = null;

  function hideAgentTyping() {
    clearTimeout(typingTimer);
    el.typing.textContent = '';
  }

  function onAgentTyping(ev) {
    if (!ev.isTyping) {
      hideAgentTyping();
      return;
    }
    el.typing.textContent = partyName(ev.party) + ' is typing…';
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideAgentTyping, AGENT_TYPING_TTL);
  }

  /* ---------- our own typing notifications (throttled) */

  let lastTypingSent = 0;
  let typingActive = false;
  let idleTimer = null;

  function stopTyping() {
    clearTimeout(idleTimer);
    if (typingActive && session && !session.ended) session.sendTyping({ isTyping: false });
    typingActive = false;
    lastTypingSent = 0;
  }

  el.message.addEventListener('input', function () {
    if (!session || session.ended) return;
    const text = el.message.value;
    if (!text) {
      stopTyping();
      return;
    }
    const now = Date.now();
    if (now - lastTypingSent >= TYPING_EVERY) {
      lastTypingSent = now;
      typingActive = true;
      session.sendTyping({ isTyping: true, typedText: text });
    }
    clearTimeout(idleTimer);
    idleTimer = setTimeout(stopTyping, TYPING_IDLE);
  });

  /* ---------- notices and UserData */

  function addNotice(node, restored) {
    const li = document.createElement('li');
    if (restored) li.className = 'restored';
    li.appendChild(node);
    el.notices.appendChild(li);
    el.noticesSection.hidden = false;
  }

  // noticeNode says what a notice means: known notices as a sentence, anything else as one line
  // of JSON, cut after NOTICE_MAX characters (the whole of it in the title).
  function noticeNode(ev) {
    const p = ev.payload;
    const who = partyName(ev.party);
    const frag = document.createDocumentFragment();
    if (p && p.type === 'cobrowse' && p.event === 'agent_joined' && p.CoBrowseSessionId) {
      frag.appendChild(document.createTextNode(who + ' joined your co-browse session ' + p.CoBrowseSessionId + '.'));
      return frag;
    }
    frag.appendChild(document.createTextNode(who + ': '));
    if (typeof p === 'string') {
      frag.appendChild(linkified(p));
    } else if (p && typeof p.text === 'string') {
      frag.appendChild(linkified(p.text));
    } else {
      const json = JSON.stringify(p);
      const code = document.createElement('code');
      code.textContent = json.length > NOTICE_MAX ? json.slice(0, NOTICE_MAX) + '…' : json;
      if (json.length > NOTICE_MAX) code.title = json;
      frag.appendChild(code);
    }
    return frag;
  }

  function onNotice(ev) {
    addNotice(noticeNode(ev), ev.restored);
  }

  // The survey is offered as a call to action once the chat has ended; SurveyURL may arrive
  // earlier (a service can attach it when the chat is routed).
  function rememberSurvey(url) {
    const href = typeof url === 'string' ? httpUrl(url) : null;
    if (href) surveyURL = href;
    if (session && session.ended) showSurvey();
  }

  function showSurvey() {
    if (!surveyURL) return;
    el.surveyLink.href = surveyURL;
    el.surveyCta.hidden = false;
  }

  function onUserDataUpdated(ev) {
    if ('SurveyURL' in ev.userData) rememberSurvey(ev.userData.SurveyURL);
  }

  /* ---------- session lifecycle */

  const endText = {
    leaveRequest: 'You ended the chat.',
    agent: 'The agent ended the chat.',
    timeout: 'The chat ended after a period of inactivity.',
    error: 'The chat ended because of a problem.',
  };

  function onSessionEnded(ev) {
    const key = Object.keys(ev.reason)[0];
    setStatus((endText[key] || 'The chat has ended.') + ' You can start a new chat below.');
    el.queue.textContent = '';
    hideAgentTyping();
    clearTimeout(idleTimer);
    typingActive = false;
    setChatEnabled(false);
    // The after-chat survey link is UserData set by the service's strategy; the ended session
    // stays readable for a while, so ask for it (it may also have arrived as an update already).
    const ended = session;
    showSurvey();
    ended.getUserData('SurveyURL').done(function (e) { rememberSurvey(e.userData.SurveyURL); showSurvey(); });
    showStart('Start a new chat');
  }

  function handleSession(s, restored) {
    session = s;
    surveyURL = null;
    el.surveyCta.hidden = true;
    el.transcript.textContent = '';
    el.notices.textContent = '';
    el.noticesSection.hidden = true;
    el.queue.textContent = '';
    hideAgentTyping();
    el.startSection.hidden = true;
    el.chatSection.hidden = false;
    setChatEnabled(true);
    setStatus(restored ? 'Your chat was restored.' : 'Waiting for an agent…');
    s.onMessageReceived(onMessage)
      .onAgentConnected(onAgentConnected)
      .onAgentDisconnected(onAgentDisconnected)
      .onAgentTyping(onAgentTyping)
      .onQueuePosition(function (ev) {
        el.queue.textContent = ev.position > 0 ? 'You are number ' + ev.position + ' in the queue.' : '';
      })
      .onNotice(onNotice)
      .onUserDataUpdated(onUserDataUpdated)
      .onError(function (ev) { setStatus('Problem: ' + describe(ev)); })
      .onSessionEnded(onSessionEnded);
    if (!restored) el.message.focus();
  }

  el.startForm.addEventListener('submit', function (e) {
    e.preventDefault();
    const name = el.name.value.trim();
    if (!name) {
      setStatus('Please enter your name.');
      el.name.focus();
      return;
    }
    el.start.disabled = true;
    setStatus('Connecting…');
    const options = { username: name, subject: el.subject.value.trim() };
    const service = new URLSearchParams(location.search).get('service');
    if (service) options.service = service;
    chat.startSession(options)
      .done(function (s) { handleSession(s, false); })
      .fail(function (ev) {
        el.start.disabled = false;
        setStatus('Could not start the chat: ' + describe(ev));
      });
  });

  el.messageForm.addEventListener('submit', function (e) {
    e.preventDefault();
    const text = el.message.value.trim();
    if (!text || !session) return;
    el.message.value = '';
    clearTimeout(idleTimer);
    typingActive = false; // the message itself ends the typing indication
    lastTypingSent = 0;
    // The line appears when the server echoes the message back (onMessageReceived), so the
    // transcript shows what the server stored, in the server's order.
    session.sendMessage(text).fail(function (ev) {
      if (!el.message.value) el.message.value = text; // give the text back so nothing is lost
      setStatus('Your message was not sent: ' + describe(ev));
    });
  });

  el.cobrowseForm.addEventListener('submit', function (e) {
    e.preventDefault();
    const id = el.cobrowseId.value.trim();
    if (!id || !session) return;
    el.cobrowseShare.disabled = true;
    session.updateUserData({ CoBrowseSessionId: id })
      .done(function () {
        // The field is for the next id: what was shared is in the status line.
        if (el.cobrowseId.value.trim() === id) el.cobrowseId.value = '';
        setStatus('Co-browse session ' + id + ' shared with the agent.');
      })
      .fail(function (ev) { setStatus('Could not share the co-browse session: ' + describe(ev)); })
      .always(function () { el.cobrowseShare.disabled = !!(session && session.ended); });
  });

  el.leave.addEventListener('click', function () {
    if (!session) return;
    el.leave.disabled = true;
    setStatus('Ending the chat…');
    session.leave().fail(function (ev) {
      el.leave.disabled = false;
      setStatus('Could not end the chat: ' + describe(ev));
    });
  });

  /* ---------- boot: continue the chat of a previous page, or offer to start one */

  if (typeof window.chat === 'undefined') {
    setStatus('The chat service could not be loaded.');
    return;
  }
  setStatus('Checking for a chat in progress…');
  chat.restoreSession()
    .done(function (s) { handleSession(s, true); })
    .fail(function (ev) {
      if (ev.error) {
        // A chat was started on a previous page but cannot be continued.
        setStatus('Your previous chat could not be restored (' + describe(ev) + '). You can start a new one.');
      } else {
        setStatus('Ready to chat.');
      }
      showStart();
    });
})();
