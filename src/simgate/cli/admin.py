"""Operator commands: accounts, apps, keys, users, rates, lines, messages, send, sim."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from simgate.cli.common import add_columns, console, esc, fail, with_services
from simgate.domain.accounts import Account, App, AppKind, GatewayRole, LedgerEntry
from simgate.domain.messages import State
from simgate.domain.money import format_amount
from simgate.lines.base import IncomingSms
from simgate.services.container import Services
from simgate.services.sending import Recipient, SendRequest

accounts_app = typer.Typer(help="Accounts: balance, credit, lock.", no_args_is_help=True)
apps_app = typer.Typer(help="SMS and voice apps (appId) and their push URLs.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys for the itniotech dialect.", no_args_is_help=True)
users_app = typer.Typer(
    help="Gateway users for the Dinstar and OpenVox dialects.", no_args_is_help=True
)
rates_app = typer.Typer(help="Prices by destination prefix.", no_args_is_help=True)
lines_app = typer.Typer(help="Lines and their ports.", no_args_is_help=True)
messages_app = typer.Typer(help="Stored messages.", no_args_is_help=True)
sim_app = typer.Typer(help="The simulated line.", no_args_is_help=True)


def _ts(ms: int | None) -> str:
    return (
        ""
        if ms is None
        else datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    )


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    # Cells hold user data (names, URLs, reasons): printed verbatim, never as markup.
    table = Table(title=esc(title))
    add_columns(table, columns, rows)
    for r in rows:
        table.add_row(*(esc(cell) for cell in r))
    console.print(table)


# ---- accounts -------------------------------------------------------------------------
_BY_HELP = "Who makes this movement, for the ledger (default: the OS user)."


def _operator(by: str | None) -> str:
    """Who an operator movement is recorded as: --by, else the OS user running simgate."""
    if by is not None:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return f"uid {os.getuid()}"


@accounts_app.command("create")
def accounts_create(
    name: str,
    currency: str = "USD",
    timezone: str = "UTC",
    balance: str = "0",
    credit: str = "0",
    *,
    by: Annotated[str | None, typer.Option(help=_BY_HELP)] = None,
) -> None:
    """Create an account (an opening balance is the first entry of its ledger)."""
    who = _operator(by)
    a = with_services(
        lambda s: s.accounts.create_account(
            name=name, currency=currency, timezone=timezone, balance=balance, credit=credit, by=who
        )
    )
    console.print(f"account {a.id} {esc(a.name)} created")


@accounts_app.command("list")
def accounts_list() -> None:
    rows = with_services(lambda s: s.accounts.list_accounts())
    _table(
        "accounts",
        ["id", "name", "currency", "balance", "gift", "credit", "tz", "locked"],
        [
            [
                str(a.id),
                a.name,
                a.currency,
                format_amount(a.balance_micros),
                format_amount(a.gift_micros),
                format_amount(a.credit_micros),
                a.timezone,
                "yes" if a.locked else "",
            ]
            for a in rows
        ],
    )


# A signed amount ("-5") is an argument, not an unknown option: the operator must get the
# top-up refusal or the correction, not "No such option: -5".
_SIGNED_AMOUNT = {"ignore_unknown_options": True}


@accounts_app.command("topup", context_settings=_SIGNED_AMOUNT)
def accounts_topup(
    account: str,
    amount: str,
    gift: bool = typer.Option(False, help="Add to the gift balance."),
    by: Annotated[str | None, typer.Option(help=_BY_HELP)] = None,
) -> None:
    """Add money to an account (more than 0; a correction is 'accounts correct')."""
    who = _operator(by)
    a = with_services(lambda s: s.accounts.topup(account, amount=amount, gift=gift, by=who))
    console.print(
        f"{esc(a.name)}: balance {format_amount(a.balance_micros)}"
        f" gift {format_amount(a.gift_micros)}"
    )


@accounts_app.command("correct", context_settings=_SIGNED_AMOUNT)
def accounts_correct(
    account: str,
    amount: Annotated[str, typer.Argument(help="Signed: -5 takes 5 off the balance.")],
    reason: Annotated[str, typer.Option(help="Why: kept in the account ledger.")],
    by: Annotated[str | None, typer.Option(help=_BY_HELP)] = None,
) -> None:
    """Correct an account's balance by a signed amount, with a reason (kept in its ledger)."""
    who = _operator(by)
    a = with_services(lambda s: s.accounts.correct(account, amount=amount, reason=reason, by=who))
    console.print(
        f"{esc(a.name)}: balance {format_amount(a.balance_micros)}"
        f" gift {format_amount(a.gift_micros)}"
    )


@accounts_app.command("ledger")
def accounts_ledger(account: str) -> None:
    """The account's operator movements (opening balance, top-ups, gifts, corrections)."""

    async def action(s: Services) -> tuple[list[LedgerEntry], Account, int]:
        entries = await s.accounts.ledger(account)
        return (
            entries,
            await s.accounts.get_account(account),
            await s.accounts.rebuilt_micros(account),
        )

    entries, acc, rebuilt = with_services(action)
    _table(
        f"ledger of {acc.name} (oldest first)",
        ["#", "at (UTC)", "kind", "amount", "balance after", "gift after", "by", "reason"],
        [
            [
                str(e.id),
                _ts(e.at_ms),
                e.kind.value,
                format_amount(e.amount_micros),
                format_amount(e.balance_after_micros),
                format_amount(e.gift_after_micros),
                e.by,
                e.reason,
            ]
            for e in entries
        ],
    )
    held = acc.balance_micros + acc.gift_micros
    console.print(
        f"balance + gift now {format_amount(held)}; rebuilt from the ledger, message charges"
        f" and call debits {format_amount(rebuilt)}"
        + ("" if held == rebuilt else " [bold red](they differ)[/]")
    )


@accounts_app.command("lock")
def accounts_lock(account: str, unlock: bool = typer.Option(False, "--unlock")) -> None:
    with_services(lambda s: s.accounts.set_locked(account, not unlock))
    console.print(f"{esc(account)} {'unlocked' if unlock else 'locked'}")


@accounts_app.command("credit")
def accounts_credit(account: str, amount: str) -> None:
    with_services(lambda s: s.accounts.set_credit(account, amount))
    console.print(f"{esc(account)}: credit line {esc(amount)}")


# ---- apps -----------------------------------------------------------------------------
@apps_app.command("create")
def apps_create(
    account: str, kind: Annotated[AppKind, typer.Option()] = AppKind.SMS, name: str = ""
) -> None:
    app = with_services(lambda s: s.accounts.create_app(account, kind=kind, name=name))
    console.print(f"app {esc(app.app_id)} ({app.kind.value}) created")


@apps_app.command("list")
def apps_list(account: Annotated[str | None, typer.Option()] = None) -> None:
    rows = with_services(lambda s: s.accounts.list_apps(account))
    _table(
        "apps",
        ["appId", "account", "kind", "name", "push"],
        [
            [
                a.app_id,
                str(a.account_id),
                a.kind.value,
                a.name,
                " ".join(f"{k}={v}" for k, v in sorted(a.push.items())),
            ]
            for a in rows
        ],
    )


@apps_app.command("update")
def apps_update(
    app_id: str,
    *,
    report_url: Annotated[
        str | None, typer.Option(help="Delivery report push URL ('' to clear).")
    ] = None,
    mo_url: Annotated[str | None, typer.Option(help="Incoming SMS push URL ('' to clear).")] = None,
    voice_url: Annotated[
        str | None, typer.Option(help="Voice report push URL ('' to clear).")
    ] = None,
    signing_secret: Annotated[
        str | None, typer.Option(help="Sign pushes (Standard Webhooks).")
    ] = None,
    voice_batch: Annotated[
        bool | None,
        typer.Option(
            "--voice-batch/--no-voice-batch",
            help='Voice reports in the batch form {"array": [...]} (spec §1.16, §7).',
        ),
    ] = None,
) -> None:
    changes = {
        "report_url": report_url,
        "mo_url": mo_url,
        "voice_url": voice_url,
        "signing_secret": signing_secret,
        # Stored as text like the URLs: "true", or "" which removes the key (single form).
        "voice_batch": None if voice_batch is None else ("true" if voice_batch else ""),
    }
    app = with_services(lambda s: _update_app(s, app_id, changes))
    console.print(f"app {esc(app.app_id)} updated: {', '.join(sorted(app.push)) or 'no push URLs'}")


async def _update_app(s: Services, app_id: str, changes: dict[str, str | None]) -> App:
    for key in ("report_url", "mo_url", "voice_url"):
        url = changes.get(key)
        if url:
            await s.pushes.validate_url(url)  # SSRF guard (issue #3)
    return await s.accounts.update_app_push(app_id, changes)


# ---- keys and users -------------------------------------------------------------------
@keys_app.command("create")
def keys_create(
    account: str,
    allow_ip: Annotated[list[str] | None, typer.Option(help="Address or CIDR; repeat.")] = None,
) -> None:
    k = with_services(lambda s: s.accounts.create_key(account, allow_ips=allow_ip or []))
    _table(
        "API key (the secret is shown once here)",
        ["Api-Key", "secret", "allow"],
        [[k.key, k.secret, ",".join(k.allow_ips) or "any"]],
    )


@keys_app.command("list")
def keys_list(account: Annotated[str | None, typer.Option()] = None) -> None:
    rows = with_services(lambda s: s.accounts.list_keys(account))
    _table(
        "API keys",
        ["Api-Key", "account", "allow", "revoked"],
        [
            [k.key, str(k.account_id), ",".join(k.allow_ips) or "any", "yes" if k.revoked else ""]
            for k in rows
        ],
    )


@keys_app.command("revoke")
def keys_revoke(key: str) -> None:
    with_services(lambda s: s.accounts.revoke_key(key))
    console.print(f"key {esc(key)} revoked")


_ROLE_HELP = (
    "operator: controls every port, sees every SIM, queue and USSD reply;"
    " account: sends and reads its own account's traffic on its ports."
)


@users_app.command("create")
def users_create(
    account: str,
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    role: Annotated[str, typer.Option(help=_ROLE_HELP)] = GatewayRole.ACCOUNT.value,
) -> None:
    u = with_services(
        lambda s: s.accounts.create_user(account, username=username, password=password, role=role)
    )
    console.print(f"gateway user {esc(u.username)} created ({u.role.value})")


@users_app.command("role")
def users_role(
    username: str,
    role: Annotated[str, typer.Argument(help=_ROLE_HELP)],
) -> None:
    """Make a gateway user an operator or an account user (API processes: within seconds)."""
    with_services(lambda s: s.accounts.set_user_role(username, role))
    console.print(f"gateway user {esc(username)} is now {esc(role)}")


@users_app.command("list")
def users_list() -> None:
    rows = with_services(lambda s: s.accounts.list_users())
    _table(
        "gateway users",
        ["username", "account", "role"],
        [[u.username, str(u.account_id), u.role.value] for u in rows],
    )


# ---- rates ----------------------------------------------------------------------------
@rates_app.command("set")
def rates_set(
    prefix: str,
    price: str,
    currency: str = "USD",
    kind: str = "sms",
    bill_period: Annotated[
        str, typer.Option(help="Voice: initial+increment seconds, e.g. 20+20.")
    ] = "",
) -> None:
    r = with_services(
        lambda s: s.accounts.set_rate(
            kind=kind, prefix=prefix, price=price, currency=currency, bill_period=bill_period
        )
    )
    console.print(
        f"{r.kind} rate for prefix '{esc(r.prefix)}': {format_amount(r.price_micros)}"
        f" {esc(r.currency)}"
    )


@rates_app.command("list")
def rates_list() -> None:
    rows = with_services(lambda s: s.accounts.list_rates())
    _table(
        "rates",
        ["kind", "prefix", "price", "currency", "billPeriod"],
        [
            [r.kind, r.prefix or "*", format_amount(r.price_micros), r.currency, r.bill_period]
            for r in rows
        ],
    )


# ---- lines ----------------------------------------------------------------------------
@lines_app.command("list")
def lines_list() -> None:
    async def action(s: Services) -> list[list[str]]:
        return [
            [
                name,
                str(p.index),
                p.name,
                p.number,
                p.imsi,
                str(p.signal),
                p.operator,
                p.reg or ("REGISTER_OK" if p.registered else "UNREGISTER"),  # modems name it
                "up" if p.usable else "down",
            ]
            for name, line in s.lines.items()
            for p in line.ports()
        ]

    # A modem line's ports are driven by another process (``run``/``worker``): this command
    # shows the state that process last stored (store/port_state.py).
    _table(
        "line ports",
        ["line", "port", "name", "number", "imsi", "signal", "operator", "reg", "state"],
        with_services(action),
    )


# ---- messages and send ----------------------------------------------------------------
@messages_app.command("list")
def messages_list(
    account: Annotated[str | None, typer.Option()] = None,
    limit: int = 20,
    state: Annotated[
        str | None, typer.Option(help="ACCEPTED, QUEUED, SENT, DELIVERED, ...")
    ] = None,
) -> None:
    if limit < 1:
        fail("--limit must be at least 1")
    if state is not None and state.upper() not in State.__members__:
        fail(f"unknown state {state!r}; one of {', '.join(State.__members__)}")

    async def action(s: Services) -> list[list[str]]:
        rows = await s.listings.messages(
            account=account or None, state=State[state.upper()] if state else None, limit=limit
        )
        return [
            [
                str(m.id),
                m.recipient,
                m.state.name,
                str(m.parts),
                m.line or "",
                "" if m.port is None else str(m.port),
                _ts(m.accepted_ms),
                m.text[:40],
            ]
            for m in rows
        ]

    _table(
        "messages (newest first)",
        ["msgId", "to", "state", "parts", "line", "port", "accepted (UTC)", "text"],
        with_services(action),
    )


def _instant_ms(text: str) -> int:
    """``--since``: an ISO 8601 time (UTC unless it says otherwise) or epoch seconds
    (milliseconds when the number is that large)."""
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        # 1e11 s is the year 5138; a number that large is milliseconds.
        return int(number) if abs(number) >= 1e11 else int(number * 1000)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--since: not an ISO 8601 time or epoch seconds: {text!r}")
        raise AssertionError("unreachable") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp() * 1000)


@messages_app.command("resend")
def messages_resend(
    state: Annotated[str, typer.Option(help="UNKNOWN: the only state that can be resent.")],
    since: Annotated[
        str | None,
        typer.Option(help="Only those that became UNKNOWN at or after this (ISO or epoch)."),
    ] = None,
    line: Annotated[str | None, typer.Option(help="Only those of this line.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List them; change nothing.")] = False,
) -> None:
    """Queue UNKNOWN messages again (due now) once you have checked they did not leave."""
    if state.upper() != State.UNKNOWN.name:
        fail(f"only UNKNOWN messages can be resent, not {state!r}")
    since_ms = None if since is None else _instant_ms(since)

    async def action(s: Services) -> list[int]:
        if dry_run:
            return await s.messaging.unknown(since_ms=since_ms, line=line)
        return await s.messaging.resend_unknown(
            now_ms=s.clock.now_ms(), since_ms=since_ms, line=line
        )

    ids = with_services(action)
    noun = "message" if len(ids) == 1 else "messages"
    if dry_run:
        console.print(f"would resend {len(ids)} UNKNOWN {noun} (dry run, nothing changed)")
        for mid in ids:
            console.print(str(mid))
    else:
        console.print(f"resent {len(ids)} UNKNOWN {noun}: QUEUED again, due now")


def send(
    to: Annotated[list[str], typer.Option("--to", help="Destination; repeat for several.")],
    text: Annotated[str, typer.Option("--text")],
    account: str = "demo",
    sender: str = "",
    repeat: Annotated[int, typer.Option(help="Send the same request N times (load).")] = 1,
) -> None:
    """Queue a message (the worker of `simgate run` or `simgate worker` sends it)."""
    if repeat < 1:
        fail("--repeat must be at least 1")

    async def action(s: Services) -> list[str]:
        acc = await s.accounts.get_account(account)
        out: list[str] = []
        with Progress(console=console, transient=True, disable=repeat < 10) as progress:
            task = progress.add_task("sending", total=repeat)
            for _ in range(repeat):
                result = await s.sending.send(
                    SendRequest(
                        account=acc,
                        dialect="cli",
                        text=text,
                        recipients=[Recipient(n) for n in to],
                        sender=sender,
                    )
                )
                out.extend(
                    f"{a.message_id} → {a.number} ({a.parts} part{'s' if a.parts > 1 else ''})"
                    for a in result.accepted
                )
                out.extend(f"invalid number: {n}" for n in result.invalid)
                progress.advance(task)
        return out

    for line in with_services(action)[-20:]:
        console.print(esc(line))


# ---- sim ------------------------------------------------------------------------------
@sim_app.command("inbound")
def sim_inbound(
    port: Annotated[int, typer.Option(help="0-based port of the sim line.")],
    sender: Annotated[str, typer.Option("--from", help="Sender number.")],
    text: Annotated[str, typer.Option("--text")],
    line: str = "sim",
) -> None:
    """Inject an incoming SMS as if it arrived on a port of the simulated line."""

    async def action(s: Services) -> list[int]:
        sim = s.lines.get(line)
        if sim is None:
            fail(f"no line named {line!r}")
        assert sim is not None
        ports = sim.ports()
        if not 0 <= port < len(ports):
            fail(f"line {line} has ports 0..{len(ports) - 1}")
        sms = IncomingSms(
            port=port,
            sender=sender,
            recipient=ports[port].number,
            text=text,
            received_ms=s.clock.now_ms(),
        )
        return await s.inbound.receive(line, [sms], ports)

    ids = with_services(action)
    console.print(f"incoming SMS {ids[0]} stored on {esc(line)} port {port}")
