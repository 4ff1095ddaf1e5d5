"""The web console on a LAN (network namespaces on one bridge, needs root): instances found
by discovery are paired with one click on each side, through APIs that listen off
loopback and so ask for a token, which the page keeps and gives its WebSocket."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.cluster.instances import start_all, wait_for
from tests.netns.topology import sh, topology

from .conftest import PageErrors, screenshot
from .daemons import NO_PULSE, Guarded

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Guarded]]:
    """Three instances on one LAN; each API on a management leg from the test's namespace
    (off loopback: tokens required, as `[api] auth = "auto"` does there)."""
    root = tmp_path_factory.mktemp("lan")
    with topology() as net:
        bridge = net.ns("L")
        sh("ip", "-n", bridge, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", bridge, "link", "set", "br0", "up")
        nodes: dict[str, Guarded] = {}
        for i, name in enumerate(("studio", "kitchen", "garage"), 1):
            ns = net.ns(name[:3].upper())
            addr = f"10.80.{net.octet}.{i}"
            _, on_bridge = net.link(ns, f"{addr}/24", bridge, "")
            sh("ip", "-n", bridge, "link", "set", on_bridge, "master", "br0")
            nodes[name] = Guarded(
                name, root, NO_PULSE + '[api]\nauth = "auto"\n', netns=ns, host=addr,
                api_host=net.manage(ns, i),
            )  # fmt: skip
        try:
            start_all(list(nodes.values()))
            yield nodes
        finally:
            for node in nodes.values():
                node.stop()


def open_with_token(page: Page, node: Guarded) -> Page:
    """Open a node's console, which asks for a token; give it one."""
    page.goto(f"{node.url}/#peers")
    expect(page.locator("#token-panel")).to_be_visible()
    page.locator("#token-input").fill(node.token)
    page.get_by_role("button", name="Use token").click()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    return page


def test_instances_found_on_the_lan_are_paired_with_a_click(
    lan: dict[str, Guarded], page: Page, context: BrowserContext, page_errors: PageErrors
) -> None:
    studio, kitchen, garage = lan["studio"], lan["kitchen"], lan["garage"]
    wait_for(
        "studio discovers the others",
        lambda: {p["uid"] for p in studio.get("/peers", params={"state": "discovered"}).json()},
        lambda uids: {kitchen.uid, garage.uid} <= uids,
        timeout=15,
    )
    open_with_token(page, studio)
    found = page.locator(f'#peer-rows tr[data-uid="{kitchen.uid}"]')
    expect(found).to_have_attribute("data-state", "discovered")
    expect(found.locator("td.fingerprint")).to_have_text(kitchen.me["fingerprint"])
    found.get_by_test_id("pair").click()
    expect(page.get_by_test_id("toast-info")).to_contain_text("kitchen is trusted")
    # Trusted here, not yet there: kitchen pairs back from its own console.
    other = open_with_token(page_errors.watch(context.new_page()), kitchen)
    back = other.locator(f'#peer-rows tr[data-uid="{studio.uid}"]')
    expect(back).to_have_attribute("data-state", "discovered", timeout=15_000)
    back.get_by_test_id("pair").click()
    expect(back).to_have_attribute("data-state", "online", timeout=15_000)
    other.close()
    expect(found).to_have_attribute("data-state", "online", timeout=15_000)
    expect(found.locator("select.role")).to_have_value("operator")
    assert studio.state_of(kitchen) == "online"
    # The third is still only discovered: nothing is trusted by being announced.
    expect(page.locator(f'#peer-rows tr[data-uid="{garage.uid}"]')).to_have_attribute(
        "data-state", "discovered"
    )
    # The events kept coming over the WebSocket with the token in its query.
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    rtt = found.locator("td").nth(5)
    expect(rtt).to_have_text(re.compile(r"^\d+(\.\d)? ms$"), timeout=10_000)  # heartbeats
    screenshot(page, "peers")
