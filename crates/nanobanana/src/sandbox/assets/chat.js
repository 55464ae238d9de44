// The sandbox's web chat: polls /api/state and draws the chat with the bot the way a Telegram
// client would (the user's and the bot's messages, edits, photos, files, inline keyboards,
// invoices); every action goes to the JSON API, which acts through the fake Telegram.
(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  let user = Number(params.get('user') || localStorage.getItem('sandbox-user') || 0);
  let lastState = '';
  let seenToasts = null;
  let attachments = [];
  let stick = true;
  // The simulated user who is an admin of the bot (ADMIN_IDS).
  let admin = 0;
  const drawn = new Map();

  async function api(path, body, method = 'POST') {
    const init = { method, headers: { 'content-type': 'application/json' } };
    if (body !== undefined) init.body = JSON.stringify(body);
    const response = await fetch(path, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || response.statusText);
    return data;
  }

  function report(error) {
    const box = $('panel-error');
    box.textContent = String(error.message || error);
    box.hidden = false;
    setTimeout(() => { box.hidden = true; }, 5000);
  }

  function act(promise) { return promise.then(refresh).catch(report); }

  const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

  // Telegram entities use UTF-16 offsets, as JavaScript strings do.
  function formatted(text, entities) {
    if (!text) return '';
    const sorted = (entities || []).slice().sort((a, b) => a.offset - b.offset || b.length - a.length);
    const opens = {}, closes = {};
    for (const e of sorted) {
      (opens[e.offset] = opens[e.offset] || []).push(e);
      (closes[e.offset + e.length] = closes[e.offset + e.length] || []).unshift(e);
    }
    const tags = { bold: 'b', italic: 'i', underline: 'u', strikethrough: 's', code: 'code', pre: 'pre',
      blockquote: 'blockquote', expandable_blockquote: 'blockquote' };
    const open = (e) => {
      const part = text.substr(e.offset, e.length);
      if (tags[e.type]) return `<${tags[e.type]}>`;
      if (e.type === 'text_link') return `<a href="${escape(e.url)}" target="_blank" rel="noopener">`;
      if (e.type === 'url') return `<a href="${escape(part)}" target="_blank" rel="noopener">`;
      if (e.type === 'bot_command') return `<a href="#" class="command" data-command="${escape(part)}">`;
      if (e.type === 'spoiler') return '<span class="spoiler">';
      return '<span>';
    };
    const close = (e) => (tags[e.type] ? `</${tags[e.type]}>` : /link|url|bot_command/.test(e.type) ? '</a>' : '</span>');
    let out = '';
    for (let i = 0; i <= text.length; i++) {
      for (const e of closes[i] || []) out += close(e);
      for (const e of opens[i] || []) out += open(e);
      if (i < text.length) out += escape(text[i]);
    }
    // Telegram's clients make bare URLs links (the fake Telegram sends no `url` entities).
    if (!sorted.some((e) => /link|url/.test(e.type))) {
      out = out.replace(/https?:\/\/[^\s<]+/g, (url) => `<a href="${url}" target="_blank" rel="noopener">${url}</a>`);
    }
    return out;
  }

  const fileUrl = (id) => `/files/${encodeURIComponent(id)}`;
  const clock = (unix) => new Date(unix * 1000).toTimeString().slice(0, 5);
  const money = (amount, currency) => (currency === 'XTR' ? `⭐ ${amount}` : `${(amount / 100).toFixed(2)} ${currency === 'RUB' ? '₽' : currency}`);

  function keyboard(message, id) {
    const rows = (message.reply_markup && message.reply_markup.inline_keyboard) || [];
    let html = '';
    for (const row of rows) {
      html += '<div class="kb-row">';
      for (const b of row) {
        const text = escape(b.text);
        if (b.url) html += `<a class="kb-button url" href="${escape(b.url)}">${text} ↗</a>`;
        else if (b.pay) html += `<button class="kb-button" data-pay="${id}">${text}</button>`;
        else if (b.callback_data !== undefined) html += `<button class="kb-button" data-press="${id}" data-data="${escape(b.callback_data)}">${text}</button>`;
        else html += `<button class="kb-button" disabled>${text}</button>`;
      }
      html += '</div>';
    }
    if (message.invoice && !rows.some((r) => r.some((b) => b.pay))) {
      html += `<div class="kb-row"><button class="kb-button" data-pay="${id}">Pay ${escape(money(message.invoice.total_amount, message.invoice.currency))}</button></div>`;
    }
    return html ? `<div class="kb">${html}</div>` : '';
  }

  function body(item) {
    const m = item.message;
    let html = '';
    if (m.photo && m.photo.length) {
      const big = m.photo[m.photo.length - 1];
      html += `<a href="${fileUrl(big.file_id)}" target="_blank"><img class="photo" src="${fileUrl(big.file_id)}" alt="photo"></a>`;
    }
    if (m.document) {
      const d = m.document;
      const preview = /^image\//.test(d.mime_type || '') ? `<img class="thumb" src="${fileUrl(d.file_id)}" alt="">` : '<span class="file-icon">📄</span>';
      const size = d.file_size ? ` · ${(d.file_size / 1024).toFixed(0)} KB` : '';
      html += `<a class="document" href="${fileUrl(d.file_id)}" target="_blank">${preview}<span>${escape(d.file_name || 'file')}<small>${escape(d.mime_type || '')}${size}</small></span></a>`;
    }
    if (m.invoice) {
      const i = m.invoice;
      html += `<div class="invoice"><b>${escape(i.title)}</b><p>${escape(i.description)}</p><span class="amount">${escape(money(i.total_amount, i.currency))}</span></div>`;
    }
    if (m.reply_to_message) {
      const r = m.reply_to_message;
      const what = r.photo ? '🖼 ' + (r.caption || 'picture') : (r.text || 'message');
      html += `<div class="quote">↩ ${escape(what.slice(0, 60))}</div>`;
    }
    if (m.text) html += `<div class="text">${formatted(m.text, m.entities)}</div>`;
    if (m.caption) html += `<div class="text">${formatted(m.caption, m.caption_entities)}</div>`;
    if (!html) html = `<div class="text unsupported">(${escape(Object.keys(m).filter((k) => !['message_id', 'from', 'chat', 'date'].includes(k)).join(', '))})</div>`;
    const meta = `${item.edits ? 'edited ' : ''}${clock(m.edit_date || m.date)}`;
    return `${html}<span class="meta">${meta}</span>`;
  }

  function render(item) {
    const m = item.message;
    if (m.successful_payment) {
      const p = m.successful_payment;
      return `<div class="service">You paid ${escape(money(p.total_amount, p.currency))}</div>`;
    }
    if (m.refunded_payment) {
      const p = m.refunded_payment;
      return `<div class="service">Refunded ${escape(money(p.total_amount, p.currency))}</div>`;
    }
    // A reply to a picture edits it (Telegram: swipe or "Reply").
    const reply = item.from === 'bot' && m.photo ? `<button type="button" class="reply" data-reply="${m.message_id}" title="Reply: edit this picture">↩</button>` : '';
    return `<div class="msg ${item.from}" data-id="${m.message_id}">${body(item)}${reply}</div>${item.from === 'bot' ? keyboard(m, m.message_id) : ''}`;
  }

  function drawMessages(items) {
    const box = $('messages');
    const keep = new Set();
    let previous = null;
    for (const item of items) {
      const key = String(item.message.message_id);
      keep.add(key);
      const html = render(item);
      let row = drawn.get(key);
      if (!row) {
        row = document.createElement('div');
        row.className = `row ${item.from}`;
        row.dataset.key = key;
        drawn.set(key, row);
      }
      if (row.drawnHtml !== html) { row.innerHTML = html; row.drawnHtml = html; }
      const group = item.message.media_group_id;
      row.classList.toggle('grouped', !!group && previous && previous.media_group_id === group);
      const after = previous ? drawn.get(String(previous.message_id)) : null;
      const want = after ? after.nextSibling : box.firstChild;
      if (want !== row) box.insertBefore(row, want);
      previous = item.message;
    }
    for (const [key, row] of drawn) if (!keep.has(key)) { row.remove(); drawn.delete(key); }
    if (stick) box.scrollTop = box.scrollHeight;
  }

  function drawUsers(state) {
    const list = $('users');
    const html = state.users.map((u) => `<li data-user="${u.id}" class="${u.id === state.user ? 'current' : ''}">
      <span class="avatar small">${escape(u.first_name.slice(0, 1))}</span>
      <span class="name">${escape(u.first_name)} <small>${u.id} · ${u.language_code}</small></span>
      <span class="credits" data-balance="${u.id}">${u.available} cr.</span></li>`).join('');
    if (list.drawnHtml !== html) { list.innerHTML = html; list.drawnHtml = html; }
    const me = state.users.find((u) => u.id === state.user);
    $('balance').textContent = me ? me.available : 0;
    $('reserved').textContent = me && me.reserved ? ` (+${me.reserved} reserved)` : '';
    $('chat-with').textContent = me ? `bot · chatting as ${me.first_name}` : 'bot';
  }

  function drawPanel(s) {
    const setIfIdle = (el, value) => { if (el && document.activeElement !== el && !el.dataset.touched) el.value = value; };
    setIfIdle($('gemini-latency'), s.gemini.latency_ms);
    $('gemini-queued').textContent = s.gemini.queued.length ? s.gemini.queued.join(', ') : 'normal';
    $('telegram-faults').textContent = s.telegram.faults.length ? s.telegram.faults.map((f) => `${f.kind} × ${f.count} (${f.method})`).join(', ') : 'none';
    $('strict-pace').checked = s.telegram.strict_pace;
    $('yookassa-held').textContent = s.yookassa.held;
    const form = $('yookassa-form');
    if (!form.contains(document.activeElement)) {
      for (const name of ['duplicate', 'delay_ms', 'drop_next']) setIfIdle(form.elements[name], s.yookassa.mode[name]);
      form.elements.hold.checked = s.yookassa.mode.hold;
    }
  }

  function drawMenu(commands) {
    const html = commands.map((c) => `<button type="button" data-command="/${escape(c.command)}"><b>/${escape(c.command)}</b> ${escape(c.description)}</button>`).join('');
    if ($('menu').drawnHtml !== html) { $('menu').innerHTML = html; $('menu').drawnHtml = html; }
  }

  function toast(chat) {
    if (seenToasts !== null && chat.toasts > seenToasts && chat.toast) {
      const box = $('toast');
      box.textContent = chat.toast;
      box.hidden = false;
      clearTimeout(box.timer);
      box.timer = setTimeout(() => { box.hidden = true; }, 2500);
    }
    seenToasts = chat.toasts;
  }

  async function refresh() {
    const response = await fetch(`/api/state?user=${user || 1001}`);
    if (response.status === 404 && user) { user = 0; return refresh(); }
    const text = await response.text();
    if (!response.ok) throw new Error(text);
    if (text === lastState) return;
    lastState = text;
    const state = JSON.parse(text);
    user = state.user;
    admin = state.admin;
    const named = state.users.find((u) => u.id === admin);
    if (named) $('admin-name').textContent = named.first_name;
    drawUsers(state);
    drawMessages(state.chat.messages);
    drawMenu(state.commands);
    drawPanel(state.switches);
    toast(state.chat);
    $('blocked').checked = state.chat.blocked;
    $('start-bar').hidden = state.chat.messages.length > 0;
    $('composer').hidden = state.chat.messages.length === 0;
  }

  async function poll() {
    try { await refresh(); } catch (e) { /* the next poll retries */ }
    setTimeout(poll, 600);
  }

  function switchUser(id) {
    user = id;
    localStorage.setItem('sandbox-user', String(id));
    history.replaceState(null, '', `/?user=${id}`);
    lastState = '';
    seenToasts = null;
    stick = true;
    for (const row of drawn.values()) row.remove();
    drawn.clear();
    refresh().catch(report);
  }

  // The bot message the next text replies to (`null`: none).
  let replyTo = null;

  function send(text) {
    const body = { text };
    if (replyTo !== null && !text.startsWith('/')) body.reply_to_message_id = replyTo;
    replyTo = null;
    drawAttachments();
    return act(api(`/api/users/${user}/text`, body));
  }

  const readBase64 = (file) => new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',')[1] || '');
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });

  function drawAttachments() {
    const box = $('attachments');
    box.hidden = attachments.length === 0 && replyTo === null;
    box.innerHTML = (replyTo !== null ? '<span class="attachment">↩ replying to a picture: your text edits it <button type="button" data-unreply="1">×</button></span>' : '')
      + attachments.map((f, i) => `<span class="attachment">${escape(f.name)} <button type="button" data-unattach="${i}">×</button></span>`).join('')
      + (attachments.length > 1 ? '<span class="hint">sent as one album</span>' : '');
  }

  $('composer').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('composer-text');
    const text = input.value.trim();
    if (attachments.length) {
      const files = attachments.slice(0, 10);
      attachments = [];
      drawAttachments();
      input.value = '';
      try {
        const items = await Promise.all(files.map(async (f) => ({ data_base64: await readBase64(f) })));
        if (text) items[0].caption = text;
        await act(api(`/api/users/${user}/photos`, { items }));
      } catch (e) { report(e); }
    } else if (text) {
      input.value = '';
      await send(text);
    }
  });

  $('attach').addEventListener('change', (event) => {
    attachments = attachments.concat(Array.from(event.target.files)).slice(0, 10);
    event.target.value = '';
    drawAttachments();
  });

  // Follow new messages while the user is at the bottom, also when pictures finish loading.
  $('messages').addEventListener('scroll', (event) => {
    const box = event.target;
    stick = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  });
  $('messages').addEventListener('load', () => { if (stick) $('messages').scrollTop = $('messages').scrollHeight; }, true);

  $('start').addEventListener('click', () => send('/start'));
  $('menu-button').addEventListener('click', () => { $('menu').hidden = !$('menu').hidden; });

  document.addEventListener('click', (event) => {
    const target = event.target.closest('[data-press],[data-pay],[data-command],[data-user],[data-unattach],[data-delete],[data-post],[data-reply],[data-unreply]');
    if (!target) return;
    const d = target.dataset;
    if (d.reply) { replyTo = Number(d.reply); drawAttachments(); $('composer-text').focus(); return; }
    if (d.unreply) { replyTo = null; drawAttachments(); return; }
    if (d.press) act(api(`/api/users/${user}/press`, { message_id: Number(d.press), data: d.data }));
    else if (d.pay) act(api(`/api/users/${user}/pay`, { message_id: Number(d.pay) }));
    else if (d.command) { event.preventDefault(); $('menu').hidden = true; send(d.command); }
    else if (d.user) switchUser(Number(d.user));
    else if (d.unattach) { attachments.splice(Number(d.unattach), 1); drawAttachments(); }
    else if (d.delete) act(api(d.delete, undefined, 'DELETE'));
    else if (d.post) act(api(d.post, JSON.parse(d.body || '{}')));
  });

  function formBody(form) {
    const body = {};
    for (const el of form.elements) {
      if (!el.name) continue;
      if (el.type === 'checkbox') body[el.name] = el.checked;
      else if (el.type === 'number') { if (el.value !== '') body[el.name] = Number(el.value); }
      else body[el.name] = el.value;
    }
    return body;
  }

  for (const form of document.querySelectorAll('form[data-api]')) {
    form.addEventListener('input', (e) => { e.target.dataset.touched = '1'; });
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      try {
        const answer = await api(form.dataset.api, formBody(form));
        for (const el of form.elements) delete el.dataset.touched;
        if (form.id === 'add-user') { form.reset(); switchUser(answer.id); } else await refresh();
      } catch (e) { report(e); }
    });
  }

  $('grant-form').addEventListener('submit', (event) => {
    event.preventDefault();
    act(api(`/api/users/${user}/grant`, formBody(event.target)));
  });
  // The operator's panel: /panel as the admin, whose chat then shows the bot's login link.
  $('operator-panel').addEventListener('click', () => {
    if (!admin) return;
    if (user !== admin) switchUser(admin);
    send('/panel');
  });
  $('strict-pace').addEventListener('change', (e) => act(api('/api/telegram/pace', { strict: e.target.checked })));
  $('blocked').addEventListener('change', (e) => act(api(`/api/users/${user}/block`, { blocked: e.target.checked })));

  if (user) localStorage.setItem('sandbox-user', String(user));
  poll();
})();
