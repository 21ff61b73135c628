"""Storage that only one vendor dialect needs: its tables, indexes and queries.

Named after the vendor so the generic store (messages, inbound, accounts) stays readable; the
services of the same name (``services/itnio.py``, ``services/dinstar.py``,
``services/openvox.py``) are their only callers, apart from the Dinstar inbound numbering the
push side runs.
"""
