// An ESME on the npm `smpp` package (a real SMPP client nobody here wrote), for simgate's
// SMPP server. Usage: node esme.js  (settings in SMPP_ESME, JSON):
//   port, system_id, password   where to bind (transceiver)
//   count                       submit_sm to send (registered_delivery 1), text "hello N"
//   dest                        destination number
//   wait_ms                     give up waiting for receipts after this long
// Prints one JSON line: {"bind": status, "submits": [[status, id]...], "receipts": [id...]}
'use strict';
const smpp = require('smpp');

const cfg = JSON.parse(process.env.SMPP_ESME || '{}');
const out = { bind: null, submits: [], receipts: [] };
const session = smpp.connect({ url: `smpp://127.0.0.1:${cfg.port}`, auto_enquire_link_period: 10000 });

function finish(code) {
  process.stdout.write(JSON.stringify(out) + '\n');
  session.close();
  process.exit(code);
}
setTimeout(() => finish(1), cfg.wait_ms || 15000);

session.on('deliver_sm', (pdu) => {
  const id = pdu.receipted_message_id || '';
  out.receipts.push(id);
  session.send(pdu.response());
  if (out.receipts.length >= cfg.count && out.submits.length >= cfg.count) finish(0);
});
session.on('error', (err) => { out.error = String(err); finish(2); });

session.bind_transceiver({ system_id: cfg.system_id, password: cfg.password }, (pdu) => {
  out.bind = pdu.command_status;
  if (pdu.command_status !== 0) return finish(3);
  for (let i = 0; i < cfg.count; i++) {
    session.submit_sm(
      { destination_addr: cfg.dest, short_message: `hello ${i}`, registered_delivery: 1 },
      (resp) => { out.submits.push([resp.command_status, resp.message_id || '']); }
    );
  }
});
