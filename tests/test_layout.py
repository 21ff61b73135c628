"""tests/ mirrors src/simgate/: every source module has its test module, or says where it is tested.

``src/simgate/<path>/<name>.py`` is tested in ``tests/<path>/test_<name>.py``; a package's
non-empty ``__init__.py`` in ``tests/<path>/test_<package>.py``. Modules tested elsewhere (through
the HTTP API, a flow test, a peer) are listed in COVERED_ELSEWHERE with the file that tests them.
Empty ``__init__.py`` files (a docstring at most) and the migrations are exempt.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "simgate"
TESTS = ROOT / "tests"

# Source module (path under src/simgate) → the test file that covers it. Moving the tests to
# their mirror path removes the line; the check below fails on a stale or wrong line.
COVERED_ELSEWHERE: dict[str, str] = {
    # The unmatched-request path: pinned byte for byte against the router's own walk.
    "api/not_found.py": "tests/api/test_unmatched.py",
    "api/route_shapes.py": "tests/api/test_unmatched.py",
    # The accept statements' rows parameter: every value round-trips through them.
    "store/jsonb_rows.py": "tests/store/test_accept_writes.py",
    # The dialects: tests/api/<dialect>/ hold their tests (not tests/api/dialects/<dialect>/).
    "api/dialects/dinstar/__init__.py": "tests/api/dinstar/test_units.py",
    "api/dialects/dinstar/routes.py": "tests/api/dinstar/test_flow.py",
    "api/dialects/dinstar/auth.py": "tests/api/dinstar/test_auth.py",
    "api/dialects/dinstar/settings.py": "tests/api/dinstar/test_units.py",
    "api/dialects/dinstar/context.py": "tests/api/dinstar/test_auth.py",
    "api/dialects/dinstar/device.py": "tests/api/dinstar/test_units.py",
    "api/dialects/dinstar/envelope.py": "tests/api/dinstar/test_errors.py",
    "api/dialects/dinstar/ports.py": "tests/api/dinstar/test_units.py",
    "api/dialects/dinstar/push.py": "tests/api/dinstar/test_push_format.py",
    "api/dialects/dinstar/render.py": "tests/api/dinstar/test_samples.py",
    "api/dialects/dinstar/sms.py": "tests/api/dinstar/test_flow.py",
    "api/dialects/itnio/__init__.py": "tests/api/itnio/test_flow.py",
    "api/dialects/itnio/routes.py": "tests/api/itnio/test_flow.py",
    "api/dialects/itnio/auth.py": "tests/api/itnio/test_auth.py",
    "api/dialects/itnio/settings.py": "tests/api/itnio/test_auth.py",
    "api/dialects/itnio/envelope.py": "tests/api/itnio/test_hostile.py",
    "api/dialects/itnio/push.py": "tests/api/itnio/test_push.py",
    "api/dialects/itnio/render.py": "tests/api/itnio/test_query.py",
    "api/dialects/itnio/replay.py": "tests/api/itnio/test_auth.py",
    "api/dialects/itnio/sending.py": "tests/api/itnio/test_send.py",
    "api/dialects/itnio/sms.py": "tests/api/itnio/test_send.py",
    "api/dialects/itnio/voice.py": "tests/api/itnio/test_voice_api.py",
    "api/dialects/itnio/voice_push.py": "tests/api/itnio/test_voice_push.py",
    "api/dialects/itnio/voice_render.py": "tests/api/itnio/test_voice_render.py",
    "api/dialects/openvox/__init__.py": "tests/api/openvox/test_send.py",
    "api/dialects/openvox/auth.py": "tests/api/openvox/test_envelope.py",
    "api/dialects/openvox/endpoints.py": "tests/api/openvox/test_boxes.py",
    "api/dialects/openvox/envelope.py": "tests/api/openvox/test_envelope.py",
    "api/dialects/openvox/push.py": "tests/api/openvox/test_push_format.py",
    "api/dialects/openvox/pushconfig.py": "tests/api/openvox/test_push_format.py",
    "api/dialects/openvox/render.py": "tests/api/openvox/test_boxes.py",
    "api/dialects/openvox/routes.py": "tests/api/openvox/test_send.py",
    "api/dialects/openvox/settings.py": "tests/api/openvox/test_config.py",
    # The web console (issue 19): its routes walked by the security tests, its pages read
    # in-process and in chromium; the store modules through the console services' tests.
    "console/app.py": "tests/console/test_security.py",
    "console/context.py": "tests/console/test_security.py",
    "console/pages_auth.py": "tests/console/test_security.py",
    "console/pages_accounts.py": "tests/console/test_pages.py",
    "console/pages_lines.py": "tests/console/test_pages.py",
    "console/pages_messages.py": "tests/console/test_pages.py",
    "console/pages_overview.py": "tests/console/test_pages.py",
    "console/pages_pushes.py": "tests/console/test_pages.py",
    "store/console_queries.py": "tests/services/test_console_queries.py",
    "store/console_users.py": "tests/services/test_console_auth.py",
    # The line's answers as rows, both backends, through the messaging service's record path.
    "store/submit_writes.py": "tests/services/test_early_reports.py",
    # The CLI: in-process runs (typer's CliRunner) per command group.
    "cli/__init__.py": "tests/cli/test_entrypoint.py",
    "cli/common.py": "tests/cli/test_admin.py",
    "cli/serve.py": "tests/process/test_startup_errors.py",
    "cli/tls.py": "tests/api/dinstar/test_curl_tls.py",
    # The modem line's package: its one export, used by every test of the line.
    "lines/modem/__init__.py": "tests/lines/modem/test_line.py",
    # The SIP line's call: its events need a far end (sipp scenarios, issue 17).
    "lines/sip/call.py": "tests/lines/sip/test_line.py",
    # Base modules.
    "errors.py": "tests/test_settings.py",
    "logsetup.py": "tests/process/test_startup_errors.py",
    "metrics.py": "tests/api/test_app.py",
    "runtime.py": "tests/api/test_app.py",
    # The SMPP codec: tested by property, golden and playbook files across the codec.
    "codecs/smpp/__init__.py": "tests/codecs/smpp/test_purity.py",
    "codecs/smpp/codec.py": "tests/codecs/smpp/test_roundtrip.py",
    "codecs/smpp/constants.py": "tests/codecs/smpp/test_constants_tlvs.py",
    "codecs/smpp/errors.py": "tests/codecs/smpp/test_codec_errors.py",
    "codecs/smpp/events.py": "tests/codecs/smpp/test_session_playbook.py",
    "codecs/smpp/fields.py": "tests/codecs/smpp/test_golden.py",
    "codecs/smpp/pdus.py": "tests/codecs/smpp/test_roundtrip.py",
    "codecs/smpp/states.py": "tests/codecs/smpp/test_session.py",
    "codecs/smpp/tlv_types.py": "tests/codecs/smpp/test_roundtrip.py",
    "codecs/smpp/tlvs.py": "tests/codecs/smpp/test_constants_tlvs.py",
    "codecs/smpp/window.py": "tests/codecs/smpp/test_session.py",
    # The worker side.
    "dispatch/reaper.py": "tests/dispatch/test_dispatcher.py",
    "dispatch/sink.py": "tests/dispatch/test_dispatcher.py",
    "dispatch/worker.py": "tests/dispatch/test_dispatcher.py",
    "domain/accounts.py": "tests/store/test_accounts.py",
    "domain/billing.py": "tests/domain/test_billing_routing.py",
    "domain/calls.py": "tests/domain/test_voice_billing.py",
    "domain/pushes.py": "tests/store/test_pushes.py",
    "domain/events.py": "tests/store/test_pushes.py",
    "domain/queue.py": "tests/services/test_messaging.py",
    "domain/records.py": "tests/store/test_queue.py",
    "domain/routing.py": "tests/domain/test_billing_routing.py",
    "lines/base.py": "tests/lines/test_sim.py",
    "lines/smpp/__init__.py": "tests/lines/smpp/test_submit.py",
    "lines/smpp/bind.py": "tests/lines/smpp/test_pacing_tls.py",
    "lines/smpp/deliveries.py": "tests/lines/smpp/test_reports_inbound.py",
    "lines/smpp/inbound.py": "tests/lines/smpp/test_pure.py",
    "lines/smpp/line.py": "tests/lines/smpp/test_submit.py",
    "lines/smpp/outbound.py": "tests/lines/smpp/test_pure.py",
    "lines/smpp/receipts.py": "tests/lines/smpp/test_pure.py",
    "lines/voice.py": "tests/lines/test_sim_voice.py",
    # The push engine.
    "push/base.py": "tests/store/test_pushes.py",
    "push/lanes.py": "tests/push/test_sender.py",
    "push/policy.py": "tests/push/test_signing_policy.py",
    "push/settings.py": "tests/push/test_push_settings.py",
    "push/signing.py": "tests/push/test_signing_policy.py",
    "push/transport.py": "tests/push/test_ssrf.py",
    # Services: exercised through the dialects and the flow tests.
    "services/accounts.py": "tests/store/test_accounts.py",
    "services/bootstrap.py": "tests/store/test_accounts.py",
    "services/calls.py": "tests/dispatch/test_calls.py",
    "services/container.py": "tests/services/test_send_to_delivered.py",
    "services/rates.py": "tests/store/test_fx.py",
    "services/sending.py": "tests/services/test_send_to_delivered.py",
    "services/voice.py": "tests/api/itnio/test_voice_api.py",
    # The store: contract tests per concern, on both backends.
    "store/__init__.py": "tests/store/test_database.py",
    # The writer's held connections and retries: through the database's writes.
    "store/batch_connections.py": "tests/store/test_database.py",
    "store/call_records.py": "tests/store/test_calls.py",
    "store/dialects/dinstar_tables.py": "tests/store/dialects/test_dinstar.py",
    "store/dialects/openvox.py": "tests/services/test_openvox.py",
    "store/inbound.py": "tests/store/test_housekeeping.py",
    "store/dialects/itnio.py": "tests/services/test_itnio.py",
    "store/messages.py": "tests/store/test_queue.py",
    "store/migrate.py": "tests/store/test_migrations.py",
    "store/owners.py": "tests/dispatch/test_dispatcher.py",
    "store/tables.py": "tests/store/test_migrations.py",
    "store/push_tables.py": "tests/store/test_pushes.py",
    "store/voice_tables.py": "tests/store/test_calls.py",
    # Shipped fakes: tested where they stand in for the real thing.
    "testing/lines.py": "tests/dispatch/test_dispatcher.py",
    "testing/procs.py": "tests/process/test_crash.py",
    "testing/push_receiver.py": "tests/push/test_sender.py",
    "testing/smsc.py": "tests/lines/smpp/test_submit.py",
    "testing/voice_lines.py": "tests/lines/test_scripted_voice.py",
    # The SMPP server (issue 18): its parts are tested through a running listener.
    "api/smpp/connection.py": "tests/api/smpp/test_listener.py",
    "api/smpp/batcher.py": "tests/api/smpp/test_limits.py",
    "api/smpp/errors.py": "tests/api/smpp/test_listener.py",
    "api/smpp/metrics.py": "tests/api/smpp/test_listener.py",
    "store/smpp_tables.py": "tests/store/test_migrations.py",
    "store/smpp_users.py": "tests/services/test_smpp_users.py",
    "store/smpp_outbox.py": "tests/services/test_smpp_outbox.py",
}


def _is_empty(path: Path) -> bool:
    """Nothing but a docstring."""
    body = ast.parse(path.read_text(encoding="utf-8")).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def _modules() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if "migrations" in rel.parts or (path.name == "__init__.py" and _is_empty(path)):
            continue
        out.append(rel.as_posix())
    return out


def mirror(module: str) -> str:
    """The test module a source module (path under src/simgate) mirrors to."""
    rel = Path(module)
    if rel.name == "__init__.py":
        name = rel.parent.name or "simgate"
        return (Path("tests") / rel.parent / f"test_{name}.py").as_posix()
    return (Path("tests") / rel.parent / f"test_{rel.stem}.py").as_posix()


def test_every_module_has_its_test_module() -> None:
    missing = [
        f"{m}: no {mirror(m)}"
        for m in _modules()
        if not (ROOT / mirror(m)).exists() and m not in COVERED_ELSEWHERE
    ]
    assert missing == [], "add the test module or a COVERED_ELSEWHERE line:\n" + "\n".join(missing)


def test_covered_elsewhere_is_current() -> None:
    modules = set(_modules())
    gone = sorted(m for m in COVERED_ELSEWHERE if m not in modules)
    mirrored = sorted(m for m in COVERED_ELSEWHERE if (ROOT / mirror(m)).exists())
    absent = sorted(t for t in COVERED_ELSEWHERE.values() if not (ROOT / t).is_file())
    assert gone == [], f"no such source module (moved or removed): {gone}"
    assert mirrored == [], f"the mirror test module exists now: remove the line: {mirrored}"
    assert absent == [], f"no such covering test file: {absent}"


def test_mirror() -> None:
    assert mirror("store/messages.py") == "tests/store/test_messages.py"
    assert mirror("clock.py") == "tests/test_clock.py"
    assert mirror("api/dialects/itnio/__init__.py") == "tests/api/dialects/itnio/test_itnio.py"
    assert mirror("codecs/smpp/pdus.py") == "tests/codecs/smpp/test_pdus.py"


def _test_imports_of(path: Path, root: Path = ROOT) -> list[str]:
    """Imports in a file under tests/ of a test module or of a private name of a conftest."""
    where = path.relative_to(root)
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.rsplit(".", 1)[-1].startswith("test_"):
                out.append(f"{where}: from {'.' * node.level}{module}")
            elif module.rsplit(".", 1)[-1] == "conftest":
                out.extend(
                    f"{where}: {a.name} from {module}" for a in node.names if a.name.startswith("_")
                )
            out.extend(
                f"{where}: from {'.' * node.level}{module} import {a.name}"
                for a in node.names
                if a.name.startswith("test_")
            )
        elif isinstance(node, ast.Import):
            out.extend(
                f"{where}: import {a.name}"
                for a in node.names
                if a.name.rsplit(".", 1)[-1].startswith("test_")
            )
    return out


def test_tests_share_helpers_through_tests_support() -> None:
    """A test module imports no other test module and no private conftest helper."""
    files = [p for p in sorted(TESTS.rglob("*.py")) if "node_modules" not in p.parts]
    broken = [line for p in files for line in _test_imports_of(p)]
    assert broken == [], "move the helper into tests/support/:\n" + "\n".join(broken)


def test_the_test_import_checker(tmp_path: Path) -> None:
    root = tmp_path / "tests"
    root.mkdir()
    sample = root / "test_x.py"
    sample.write_text(
        "from tests.api.itnio.test_send import helper\n"
        "from .test_golden import VECTOR\n"
        "from tests.conftest import _truncate_pg, make_settings\n"
        "from tests.support.shapes import assert_same_shape\n"
        "from tests.cli import test_admin\n"
    )
    assert _test_imports_of(sample, tmp_path) == [
        "tests/test_x.py: from tests.api.itnio.test_send",
        "tests/test_x.py: from .test_golden",
        "tests/test_x.py: _truncate_pg from tests.conftest",
        "tests/test_x.py: from tests.cli import test_admin",
    ]
