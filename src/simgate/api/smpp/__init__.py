"""The SMPP server: customers bind to simgate as ESMEs (issue 18; design.md "The picture").

:mod:`.listener` accepts connections (cap, TLS) and owns the binds of every account;
:mod:`.connection` drives one socket through the sans-IO session in the SMSC role;
:mod:`.submit` reads a submit_sm/data_sm into text and addresses (pure); :mod:`.concat`
joins the parts of a long message; :mod:`.throttle` is the per-account token bucket;
:mod:`.deliverer` sends the receipt outbox on the receiving binds.
"""
