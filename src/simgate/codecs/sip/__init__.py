"""SIP for a user agent client, sans-IO (stdlib only: no sockets, no clock).

Modules: :mod:`.message` (RFC 3261 §7 parse/serialise, TCP framing), :mod:`.digest` (RFC 2617 /
RFC 7616 MD5 digest answers), :mod:`.sdp` (RFC 4566 offer, RFC 3264 answer), :mod:`.dtmf_info`
(SIP INFO DTMF bodies), :mod:`.dialog` (the requests of one outgoing call and their answers),
:mod:`.uac` (one outgoing call as a state table: messages and timers in, actions out),
:mod:`.register` (REGISTER and its refresh time).
"""
