"""The whole schema: every module that declares tables or indexes on ``metadata``.

A table module adds its tables to ``metadata`` when it is imported; this module imports each
of them, one line per module, and nothing else assembles the schema. Migrations
(store/migrations, which create exactly these tables) compare against :data:`metadata`, and
the tests empty :data:`metadata`'s tables between runs.
"""

from __future__ import annotations

import simgate.store.console_queries
import simgate.store.console_users
import simgate.store.dialects.dinstar_tables
import simgate.store.dialects.openvox
import simgate.store.port_state
import simgate.store.push_tables
import simgate.store.smpp_tables
import simgate.store.tables
import simgate.store.voice_tables

metadata = simgate.store.tables.metadata
