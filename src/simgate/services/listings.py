"""Newest-first listings for operators: ``simgate messages list`` and ``simgate calls list``."""

from __future__ import annotations

from simgate.domain.calls import CallRecord
from simgate.domain.messages import State
from simgate.domain.records import MessageRecord
from simgate.services.accounts import AccountService
from simgate.store import Store


class Listings:
    def __init__(self, *, store: Store, accounts: AccountService) -> None:
        self._store = store
        self._accounts = accounts

    async def _account_id(self, account: str | int | None) -> int | None:
        return None if account is None else (await self._accounts.get_account(account)).id

    async def messages(
        self, *, account: str | int | None = None, state: State | None = None, limit: int = 20
    ) -> list[MessageRecord]:
        """The newest messages (of one account, in one state), newest first."""
        account_id = await self._account_id(account)
        async with self._store.db.read() as conn:
            return await self._store.messages.page(
                conn,
                account_id=account_id,
                states=None if state is None else [state],
                newest_first=True,
                limit=limit,
            )

    async def calls(self, *, account: str | int | None = None, limit: int = 20) -> list[CallRecord]:
        """The newest calls in any state (of one account), newest first."""
        account_id = await self._account_id(account)
        async with self._store.db.read() as conn:
            return await self._store.calls.recent(conn, account_id=account_id, limit=limit)
