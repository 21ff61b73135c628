"""Index for the OpenVox inbox filter (migration 0005_openvox).

``/smsinbox/get`` filters an account's incoming SMS by sender and a time window (an id
range) and counts them for ``total``/``pages``. (``/smsoutbox/get`` filters messages by
recipient with ``ix_messages_recipient (account_id, recipient, id)``, which the Dinstar
dialect's migration 0004 creates.) Imported by ``tables.py`` so it is part of ``metadata``.
"""

from __future__ import annotations

from sqlalchemy import Index

from simgate.store.tables import inbound

ix_inbound_sender = Index("ix_inbound_sender", inbound.c.account_id, inbound.c.sender, inbound.c.id)
