// A scriptable SMSC on the npm `smpp` package (a real SMPP implementation nobody here wrote).
//
// Usage: node server.js  (settings in the SMPP_SCRIPT environment variable, JSON):
//   port            TCP port on 127.0.0.1 (0: any; the chosen one is printed "LISTENING <port>")
//   throttle_after  answer ESME_RTHROTTLED (0x58) after this many accepted submits ...
//   throttle_times  ... this many times (default: forever), then accept again
//   error_status    answer every submit_sm with this status
//   silent_after    stop answering submit_sm after this many
//   drop_after      after this many answered submits, drop the connection on the next (once)
//   receipts        "after" (default) | "before" the submit_sm_resp | "none"
//   receipt_bind    "same" (default) | "other": send receipts on another bound session
//   receipt_ids     "hex" (default, like the submit_sm_resp ids) | "decimal"
//   stat            receipt stat text (default DELIVRD)
//   receipt_delay_ms  send each receipt this long after its submit_sm_resp, on a receiving
//                   bind up by then, else on the next one that binds (as unacknowledged ones)
//   log             path of a JSON-lines log: binds, submits (with UDH and decoded text),
//                   deliver_sm answers
//   quiet           no per-PDU log (benchmarks)
//   nodelay         disable Nagle's algorithm on the SMSC's sockets (node's default: enabled)
//   count_file      write the number of submit_sm answered there every 50 ms (benchmarks)
'use strict';
const fs = require('fs');
const smpp = require('smpp');

const cfg = JSON.parse(process.env.SMPP_SCRIPT || '{}');
const logFd = cfg.log ? fs.openSync(cfg.log, 'a') : null;
function log(obj) {
  if (logFd !== null && !cfg.quiet) fs.writeSync(logFd, JSON.stringify(obj) + '\n');
}

let nextId = 0x5b000001;
let answered = 0;
let throttled = 0;
let dropPending = cfg.drop_after !== undefined;
const receivers = new Set();

function stamp() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function receiptFor(id, pdu) {
  const stat = cfg.stat || 'DELIVRD';
  const shown = cfg.receipt_ids === 'decimal' ? String(parseInt(id, 16)).padStart(10, '0') : id;
  const ok = stat === 'DELIVRD';
  const text = `id:${shown} sub:001 dlvrd:${ok ? '001' : '000'} submit date:${stamp()} ` +
    `done date:${stamp()} stat:${stat} err:${ok ? '000' : '001'} text:`;
  return {
    source_addr: pdu.destination_addr,
    destination_addr: pdu.source_addr,
    esm_class: 0x04,
    data_coding: 0,
    short_message: Buffer.from(text, 'ascii'),
  };
}

function receiptSession(session) {
  if (cfg.receipt_bind === 'other') {
    for (const s of receivers) if (s !== session) return s;
  }
  if (receivers.has(session)) return session;
  for (const s of receivers) return s;
  return null;
}

// Receipts not acknowledged yet, by message id: a real SMSC keeps them and delivers them
// again on the next receiving bind when the connection drops before the answer. Only those
// sent on a session that is gone are redelivered: receipts in flight on a live session are
// still waiting for their answer, not lost.
const unacked = new Map();

function sendReceipt(target, receipt, id) {
  unacked.set(id, { receipt, session: target });
  target.deliver_sm(receipt, (resp) => {
    log({ ev: 'deliver_resp', status: resp.command_status, id });
    if (resp.command_status === 0) unacked.delete(id);
  });
}

function redeliver(session) {
  for (const [id, entry] of unacked) {
    if (receivers.has(entry.session)) continue;
    log({ ev: 'redeliver', id });
    sendReceipt(session, entry.receipt, id);
  }
}

function onSubmit(session, pdu) {
  if (dropPending && answered >= cfg.drop_after) {
    dropPending = false;
    log({ ev: 'drop' });
    session.socket.destroy();
    return;
  }
  const sm = pdu.short_message || {};
  const entry = {
    ev: 'submit',
    src: pdu.source_addr, src_ton: pdu.source_addr_ton, src_npi: pdu.source_addr_npi,
    dst: pdu.destination_addr, esm_class: pdu.esm_class, data_coding: pdu.data_coding,
    registered_delivery: pdu.registered_delivery,
    udh: (sm.udh || []).map((b) => b.toString('hex')),
    text: typeof sm.message === 'string' ? sm.message : null,
  };
  if (cfg.silent_after !== undefined && answered >= cfg.silent_after) {
    log({ ...entry, status: 'silent' });
    return;
  }
  answered += 1;
  let status = cfg.error_status || 0;
  if (cfg.throttle_after !== undefined && answered > cfg.throttle_after &&
      (cfg.throttle_times === undefined || throttled < cfg.throttle_times)) {
    throttled += 1;
    status = smpp.ESME_RTHROTTLED;
  }
  if (status !== 0) {
    log({ ...entry, status });
    session.send(pdu.response({ command_status: status }));
    return;
  }
  const id = (nextId++).toString(16);
  log({ ...entry, status: 0, message_id: id });
  const resp = pdu.response({ message_id: id });
  const wantsReceipt = (pdu.registered_delivery & 1) && cfg.receipts !== 'none';
  if (wantsReceipt && cfg.receipt_delay_ms) {
    session.send(resp);
    const receipt = receiptFor(id, pdu);
    setTimeout(() => {
      const later = receiptSession(session);
      if (later) sendReceipt(later, receipt, id);
      else unacked.set(id, { receipt, session: null });  // redelivered on the next bind
    }, cfg.receipt_delay_ms);
    return;
  }
  const target = wantsReceipt ? receiptSession(session) : null;
  if (target && cfg.receipts === 'before') {
    sendReceipt(target, receiptFor(id, pdu), id);
    session.send(resp);
    return;
  }
  session.send(resp);
  if (target) sendReceipt(target, receiptFor(id, pdu), id);
}

const server = smpp.createServer({ debug: false }, (session) => {
  if (cfg.nodelay) session.socket.setNoDelay(true);
  const bind = (kind, receives) => (pdu) => {
    log({ ev: 'bind', kind, system_id: pdu.system_id });
    session.send(pdu.response({ system_id: 'nodesmsc' }));
    if (receives) {
      receivers.add(session);
      setTimeout(() => redeliver(session), 50);
    }
  };
  session.on('bind_transceiver', bind('transceiver', true));
  session.on('bind_transmitter', bind('transmitter', false));
  session.on('bind_receiver', bind('receiver', true));
  session.on('submit_sm', (pdu) => onSubmit(session, pdu));
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('close', () => receivers.delete(session));
  session.on('error', () => receivers.delete(session));
});

server.listen(cfg.port || 0, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
if (cfg.count_file) {
  setInterval(() => fs.writeFileSync(cfg.count_file, String(answered)), 50);
}
process.on('SIGTERM', () => process.exit(0));
