"""The web console in a real browser against real daemons (processes, each with its own
headless PulseAudio): pair two instances, make and change virtual devices, make a stream
by clicking the routing matrix, watch its metrics move, delete it; and a daemon whose API
asks for a token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.cluster.instances import Instance, start_all, wait_for

from .conftest import SCREENSHOTS, PageErrors, screenshot
from .daemons import NO_PULSE, Guarded, create_token, pair_by_invite, private_pulse

pytestmark = pytest.mark.slow

#: Seconds of metrics gathered before the streams screenshot (only when making them).
CHART_S = 90


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Instance, Instance]]:
    """Two instances, `studio` and `kitchen`, not paired yet."""
    root = tmp_path_factory.mktemp("console")
    a = Instance("studio", root, private_pulse(root, "studio"))
    b = Instance("kitchen", root, private_pulse(root, "kitchen"))
    start_all([a, b])
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture
def paired(cluster: tuple[Instance, Instance]) -> tuple[Instance, Instance]:
    a, b = cluster
    if a.state_of(b) != "online":  # this test runs without the pairing test before it
        pair_by_invite(a, b)
    return a, b


def live(page: Page, url: str) -> Page:
    """Open the console at `url` and wait until its event feed is live."""
    page.goto(url)
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    return page


def vad_named(instance: Instance, name: str, kind: str = "speaker") -> dict[str, Any]:
    """The VAD called `name` on `instance`, made if it is not there."""
    for vad in instance.get("/peers/self/vads").json():
        if vad["name"] == name:
            return dict(vad)
    r = instance.post("/peers/self/vads", {"name": name, "kind": kind})
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_pairing_two_instances_with_an_invite(
    cluster: tuple[Instance, Instance], page: Page, context: BrowserContext, page_errors: PageErrors
) -> None:
    a, b = cluster
    live(page, f"{a.url}/#peers")
    expect(page.locator("#self-name")).to_have_text("studio")
    expect(page.locator('#peer-rows tr[data-state="self"]')).to_have_count(1)
    page.get_by_role("button", name="Make an invite").click()
    invite = page.locator("#invite-token")
    expect(invite).to_be_visible()
    token = invite.input_value()
    assert token.startswith("rocd1-")

    other = page_errors.watch(context.new_page())
    live(other, f"{b.url}/#peers")
    other.locator("#join-form input[name=token]").fill(token)
    other.get_by_role("button", name="Join").click()
    expect(other.get_by_test_id("toast-info")).to_have_text("joined studio")

    # The joiner shows up on the inviter's page by itself (peer.joined on the event feed).
    row = page.locator(f'#peer-rows tr[data-uid="{b.uid}"]')
    expect(row).to_have_attribute("data-state", "online")
    expect(row.locator("td").nth(1)).to_contain_text("kitchen")
    expect(row.locator("select.role")).to_have_value("operator")
    expect(row.locator("td").nth(5)).to_have_text(re.compile(r"\d+(\.\d)? ms"), timeout=10_000)
    assert a.state_of(b) == "online"


def test_virtual_devices_made_changed_and_deleted_on_another_instance(
    paired: tuple[Instance, Instance], page: Page, page_errors: PageErrors
) -> None:
    a, b = paired
    live(page, f"{a.url}/#devices")
    card = page.locator(f'.peer-card[data-uid="{b.uid}"]')
    expect(card.locator("h2")).to_have_text("kitchen")
    form = card.get_by_test_id("create-vad")

    # An error is the API's own message, word for word.
    form.locator("input[name=name]").fill("   ")
    form.get_by_role("button", name="Create").click()
    said = httpx.post(f"{a.url}/peers/{b.uid}/vads", json={"name": "   ", "kind": "speaker"})
    assert said.status_code == 422
    expect(page.get_by_test_id("toast-error")).to_have_text(said.json()["message"])

    for name, kind in (("Scratch", "speaker"), ("Podcast mic", "microphone")):
        form.locator("input[name=name]").fill(name)
        form.locator("select[name=kind]").select_option(kind)
        form.get_by_role("button", name="Create").click()
        expect(card.locator(".vads tr", has_text=name)).to_have_count(1)
    made = {v["name"]: v for v in b.get("/peers/self/vads").json()}
    assert made["Scratch"]["kind"] == "speaker"
    assert made["Podcast mic"]["kind"] == "microphone"
    scratch = made["Scratch"]

    # Rename in place: the pencil, a new name, Enter.
    vad_row = card.locator(f'.vads tr[data-uid="{scratch["uid"]}"]')
    vad_row.get_by_role("button", name="rename").click()
    vad_row.locator("input.name-input").fill("Küche 'B'")
    vad_row.locator("input.name-input").press("Enter")
    expect(vad_row.get_by_test_id("vad-name")).to_have_text("Küche 'B'")
    wait_for(
        "the new name on kitchen",
        lambda: b.get(f"/peers/self/vads/{scratch['uid']}").json()["name"],
        lambda name: name == "Küche 'B'",
    )

    # The volume slider and the mute switch of its device.
    device_row = card.locator(f'.devices tr[data-id="{scratch["device"]}"]')
    device_row.get_by_test_id("volume").fill("40")
    device_row.get_by_test_id("mute").check()
    wait_for(
        "volume and mute on kitchen",
        lambda: b.get(f"/peers/self/devices/{scratch['device']}").json(),
        lambda d: (d["volume"], d["mute"]) == (0.4, True),
    )
    expect(device_row.locator(".volume-text")).to_have_text("40 %")

    # Delete: the first click arms the button, the second deletes.
    delete = vad_row.get_by_test_id("delete-vad")
    delete.click()
    expect(delete).to_have_text("Delete it?")
    delete.click()
    expect(vad_row).to_have_count(0)
    assert scratch["uid"] not in [v["uid"] for v in b.get("/peers/self/vads").json()]


def test_a_stream_made_by_clicking_the_matrix_with_live_metrics(
    paired: tuple[Instance, Instance],
    page: Page,
    context: BrowserContext,
    page_errors: PageErrors,
) -> None:
    a, b = paired
    desk = vad_named(a, "Desk speakers")
    living = vad_named(b, "Living room")
    live(page, f"{a.url}/#streams")
    source, destination = f"{a.uid}|tone:sine", f"{b.uid}|{living['device']}"
    cell = page.locator(f'td.cell[data-source="{source}"][data-destination="{destination}"]')
    expect(cell).to_have_attribute("data-state", "")
    cell.click()
    expect(cell).to_have_attribute("data-state", "active", timeout=15_000)
    [stream] = a.get("/streams").json()
    assert stream["source"] == {"peer": a.uid, "device": "tone:sine"}
    assert stream["destination"] == {"peer": b.uid, "device": living["device"]}
    assert [s["uid"] for s in b.get("/streams").json()] == [stream["uid"]]

    # Its metrics come live from the event feed: the receiver's packet count moves.
    row = page.locator(f'#stream-rows tr[data-uid="{stream["uid"]}"]')
    expect(row).to_have_attribute("data-received", re.compile(r"^[1-9]\d*$"))
    first = int(row.get_attribute("data-received") or 0)
    page.wait_for_function(
        "([uid, n]) => Number(document.querySelector(`#stream-rows tr[data-uid='${uid}']`)"
        ".dataset.received) > n",
        arg=[stream["uid"], first],
    )
    expect(row.get_by_test_id("latency")).to_have_text(re.compile(r"^\d+(\.\d)? ms / 200 ms$"))
    expect(row.get_by_test_id("loss")).to_have_text(re.compile(r"^\d+\.\d+ % \(\d+\)$"))
    expect(row.get_by_test_id("drift")).to_have_text(re.compile(r"^-?\d+\.\d ppm$"))
    expect(page.locator("#chart")).to_have_attribute("data-points", re.compile(r"^([3-9]|\d\d+)$"))

    # The other way, made on kitchen's console: both show every stream of the cluster.
    cell_of = "td.cell[data-source='{}|tone:sweep'][data-destination='{}|{}']"
    selector = cell_of.format(b.uid, a.uid, desk["device"])
    other_page = live(page_errors.watch(context.new_page()), f"{b.url}/#streams")
    other_page.locator(selector).click()
    expect(other_page.locator(selector)).to_have_attribute("data-state", "active", timeout=15_000)
    other_page.close()
    back = page.locator(selector)
    expect(back).to_have_attribute("data-state", "active")
    [other] = [s for s in a.get("/streams").json() if s["uid"] != stream["uid"]]
    assert other["source"] == {"peer": b.uid, "device": "tone:sweep"}
    if SCREENSHOTS:
        take_screenshots(page, a)

    # Delete: the row's button (two clicks), then two clicks on the first one's cell.
    remove = page.locator(f'#stream-rows tr[data-uid="{other["uid"]}"]').get_by_test_id(
        "delete-stream"
    )
    remove.click()
    expect(remove).to_have_text("Delete it?")
    remove.click()
    expect(back).to_have_attribute("data-state", "", timeout=10_000)
    cell.click()
    expect(cell).to_have_class(re.compile(r"\barmed\b"))
    cell.click()
    expect(cell).to_have_attribute("data-state", "", timeout=10_000)
    expect(page.locator("#stream-rows tr")).to_have_count(0)
    assert a.get("/streams").json() == []
    assert b.get("/streams").json() == []


def take_screenshots(page: Page, a: Instance) -> None:
    """The README's pictures of the streams (after CHART_S seconds of metrics) and the
    devices (the peers' one is test_console_lan's: it has a discovered instance)."""
    page.wait_for_timeout(CHART_S * 1000)
    screenshot(page, "streams")
    live(page, f"{a.url}/#devices")
    expect(page.locator("#view-devices")).to_be_visible()
    page.wait_for_timeout(1000)  # states settle
    screenshot(page, "devices")
    live(page, f"{a.url}/#streams")


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Guarded]:
    instance = Guarded("vault", tmp_path, NO_PULSE)
    start_all([instance])
    try:
        yield instance
    finally:
        instance.stop()


def test_a_daemon_that_asks_for_a_token(
    guarded: Guarded, page: Page, page_errors: PageErrors
) -> None:
    page.goto(guarded.url)
    # The page loads; the API refuses it, in its own words, and the token field opens.
    refusal = httpx.get(f"{guarded.url}/peers").json()["message"]
    panel = page.locator("#token-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#token-why")).to_have_text(refusal)
    expect(page.get_by_test_id("toast-error").first).to_have_text(refusal)
    expect(page.locator("#live")).not_to_have_attribute("data-state", "live")

    viewer = create_token(guarded.state_dir, "viewer", "console")
    page.locator("#token-input").fill(viewer)
    page.get_by_role("button", name="Use token").click()
    expect(panel).to_be_hidden()
    # The event WebSocket got the token in its query: the feed is live.
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(page.locator("#self-name")).to_have_text("vault")

    # Kept in the browser: a reload needs no typing.
    page.reload()
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    expect(panel).to_be_hidden()

    # A viewer reads, and a change is refused with the API's message.
    page.goto(f"{guarded.url}/#devices")
    form = page.locator(".peer-card").get_by_test_id("create-vad")
    form.locator("input[name=name]").fill("Not allowed")
    form.get_by_role("button", name="Create").click()
    said = httpx.post(
        f"{guarded.url}/peers/self/vads",
        json={"name": "Not allowed", "kind": "speaker", "driver": "tone"},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert said.status_code == 403
    expect(page.get_by_test_id("toast-error").last).to_have_text(said.json()["message"])
    assert guarded.get("/peers/self/vads").json() == []
