"""The console in a real browser (issue 19 "Done when"): Debian's chromium driven by
Playwright against a real ``simgate run``. Screenshots of every page go to
``$SIMGATE_TEST_ARTIFACTS`` (default tests/artifacts/console/, gitignored).

One scenario, in order: log in; the overview with its charts drawn; a message sent through
each of the three APIs found by its number, opened, its receipt seen; a push dead-lettered
(its receiver was down), retried from the console and seen delivered once the receiver is
up; an API key created (its secret shown once) and revoked; an account's user refused
another account's page.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from simgate.testing.procs import SimgateProcess, free_port, simgate_command, write_config
from tests.conftest import need_peer

pytestmark = [pytest.mark.peer, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
PUSH_LINK = "a[href^='/console/pushes/']"
ARTIFACTS = (
    Path(
        os.environ.get("SIMGATE_TEST_ARTIFACTS")
        or Path(__file__).resolve().parents[1] / "artifacts"
    )
    / "console"
)


def _chromium() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        _Hook.received.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:  # quiet
        return


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SimgateProcess, dict[str, str], Path]]:
    need_peer("chromium", _chromium() is not None, CHROMIUM)
    tmp = tmp_path_factory.mktemp("console_browser")
    port = free_port()
    cfg = write_config(
        tmp / "simgate.toml",
        {
            "data_dir": str(tmp / "data"),
            "log_level": "warning",
            "http": {"port": port},
            # The receiver is on 127.0.0.1; a push to it dies within a second while it is down.
            "push": {
                "allow_cidrs": ["127.0.0.0/8"],
                "give_up_after_seconds": 1.0,
                "retry_base_seconds": 0.2,
                "retry_max_seconds": 0.5,
                "connect_timeout_seconds": 1.0,
            },
        },
    )
    with SimgateProcess(["run"], workdir=tmp, config=cfg, port=port) as proc:
        proc.wait_healthy()
        demo = json.loads((tmp / "data" / "demo.json").read_text(encoding="utf-8"))
        yield proc, demo, cfg


def _send_through_each_api(url: str, demo: dict[str, str]) -> dict[str, str]:
    numbers = {"itnio": "8613800000101", "dinstar": "8613800000102", "openvox": "8613800000103"}
    with httpx.Client(base_url=url, timeout=10) as c:
        ts = str(int(time.time()))
        sign = hashlib.md5((demo["api_key"] + demo["api_secret"] + ts).encode()).hexdigest()
        headers = {"Api-Key": demo["api_key"], "Timestamp": ts, "Sign": sign}
        body = {"appId": demo["sms_app_id"], "numbers": numbers["itnio"], "content": "via itnio"}
        assert c.post("/sms/sendSms", json=body, headers=headers).json()["status"] == "0"
        auth = httpx.DigestAuth(demo["gateway_username"], demo["gateway_password"])
        body2 = {"text": "via dinstar", "param": [{"number": numbers["dinstar"]}]}
        assert c.post("/api/send_sms", json=body2, auth=auth).json()["error_code"] == 202
        body3 = {
            "username": demo["gateway_username"],
            "password": demo["gateway_password"],
            "dest_num": numbers["openvox"],
            "msg": "via openvox",
        }
        assert c.post("/sms/send", json=body3).json()["code"] == 200
    return numbers


def _cli(cfg: Path, *args: str) -> str:
    out = subprocess.run(
        [*simgate_command(), "--config", str(cfg), *args],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return out.stdout


def test_the_console_in_chromium(gateway: tuple[SimgateProcess, dict[str, str], Path]) -> None:
    proc, demo, cfg = gateway
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    hook_port = free_port()
    numbers = _send_through_each_api(proc.url, demo)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=_chromium(),
            args=["--headless", "--no-sandbox"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.set_default_timeout(15_000)

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

        # Log in.
        page.goto(f"{proc.url}/console/")
        expect(page).to_have_url(f"{proc.url}/console/login")
        page.get_by_label("Username").fill(demo["console_username"])
        page.get_by_label("Password").fill(demo["console_password"])
        shot("login")
        page.get_by_role("button", name="Log in").click()

        # The overview, charts drawn (uPlot puts a canvas in each chart's element).
        expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()
        expect(page.locator("#chart-hour[data-drawn] canvas")).to_have_count(1)
        expect(page.locator("#chart-day[data-drawn] canvas")).to_have_count(1)
        shot("overview")

        # Each API's message by its number: opened, its receipt seen.
        for api, number in numbers.items():
            page.goto(f"{proc.url}/console/messages")
            page.get_by_label("Number").fill(number)
            page.get_by_role("button", name="Search").click()
            link = page.locator("td.id a").first
            expect(link).to_be_visible()
            link.click()
            expect(page.get_by_text(f"via {api}", exact=True)).to_be_visible()
            for _ in range(30):  # the sim line reports within moments
                if page.get_by_role("cell", name="delivered", exact=True).count():
                    break
                time.sleep(0.5)
                page.reload()
            expect(page.get_by_role("cell", name="delivered", exact=True)).to_be_visible()
            shot(f"message-{api}")

        # Point the SMS app's reports at a receiver that is down; a new message's report push
        # dies; the receiver comes up; retry from the console; delivered.
        page.goto(f"{proc.url}/console/accounts/1")
        page.get_by_label("Report push URL").first.fill(f"http://127.0.0.1:{hook_port}/hook")
        page.get_by_role("button", name="Save push URLs").first.click()
        _send_through_each_api(proc.url, demo)
        for _ in range(40):
            page.goto(f"{proc.url}/console/pushes?state=dead")
            if page.locator(PUSH_LINK).count():
                break
            time.sleep(0.5)
        shot("pushes-dead")
        page.locator(PUSH_LINK).first.click()
        expect(page.locator("#push-state")).to_have_text("dead")
        server = HTTPServer(("127.0.0.1", hook_port), _Hook)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            page.get_by_role("button", name="Retry this push").click()
            for _ in range(40):
                if page.locator("#push-state").inner_text().startswith("delivered"):
                    break
                time.sleep(0.5)
                page.reload()
            expect(page.locator("#push-state")).to_have_text("delivered")
            # Every attempt listed: the ones that died, then the delivery.
            attempts = page.locator("#attempts tbody tr")
            expect(attempts.last).to_contain_text("delivered")
            assert attempts.count() >= 2
            assert "dead" in attempts.nth(attempts.count() - 2).inner_text()
            shot("push-delivered")
        finally:
            server.shutdown()
            server.server_close()
        assert _Hook.received

        # An incoming SMS: listed, its page opened; the lines page with each port's day.
        _cli(cfg, "sim", "inbound", "--port", "1", "--from", "8613912345678", "--text", "hi there")
        page.goto(f"{proc.url}/console/inbound")
        page.locator("td.id a").first.click()
        expect(page.get_by_text("hi there")).to_be_visible()
        shot("incoming")
        page.goto(f"{proc.url}/console/lines")
        expect(page.get_by_role("columnheader", name="Sent today").first).to_be_visible()
        shot("lines")

        # An API key: created, its secret shown once, revoked.
        page.goto(f"{proc.url}/console/accounts/1")
        page.get_by_role("button", name="Create an API key").click()
        key = page.locator("#new-key-id").inner_text()
        assert len(page.locator("#new-key-secret").inner_text()) == 32
        shot("key-created")
        page.goto(f"{proc.url}/console/accounts/1")
        assert page.locator("#new-key-secret").count() == 0  # shown once
        page.get_by_role("button", name=f"Revoke key {key}").click()
        expect(page.get_by_role("row", name=key)).to_contain_text("revoked")
        shot("key-revoked")

        # An account's user is refused another account.
        _cli(cfg, "accounts", "create", "other")
        _cli(cfg, "console-users", "create", "outsider", "--password", "outsider-pw",
             "--account", "other")  # fmt: skip
        page.get_by_role("button", name="Log out").click()
        page.get_by_label("Username").fill("outsider")
        page.get_by_label("Password").fill("outsider-pw")
        page.get_by_role("button", name="Log in").click()
        response = page.goto(f"{proc.url}/console/accounts/1")
        assert response is not None
        assert response.status == 404
        shot("refused")
        page.set_viewport_size({"width": 380, "height": 800})  # a phone
        page.goto(f"{proc.url}/console/messages")
        shot("messages-phone")
        browser.close()
