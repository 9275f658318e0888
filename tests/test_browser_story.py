"""The whole story in a real browser, as new users would try it: Playwright drives Debian's
Chromium against `search-party serve` (waitress and the ingest worker, started here on 127.0.0.1
with a fresh data folder).

A neighbour signs up, adds a camera and opts it in, and uploads a clip with a dog in it.  No real
camera clip with a dog exists in the data (../shared/data/MANIFEST.md), so the clip is composed
with tests/clipmaker.py: real MPDD crops of fixture dog 182, sequence 4, walking over a real CCTV
frame.  A second neighbour adds a camera beside it and never opts it in.  A pet owner signs up and
reports the dog lost with a photo from a *different* sequence (3), after the wizard has refused a
photo of a person.  The worker has found the dog in the clip; the search matches it and asks the
first neighbour, who shares it; the second is never asked.  The owner sees the sighting on the map
and the timeline with a coarse area, prints a flyer and marks the dog found.

Screenshots of each step: the test's tmp_path/browser-story/ (pytest keeps the last three runs).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from clipmaker import DogWalk, compose, fit, frame_times, mpdd_crops, video_frame, write_clip
from domain_world import settings_for
from owner_world import CAMERA, LAST_SEEN, OWNER_PHOTO, PERSON_PHOTO
from playwright.sync_api import expect, sync_playwright
from sighting_drafts import SHIPPED_EMBEDDER
from web_helpers import PASSWORD, ROOT

from search_party.store.db import utcnow

CHROMIUM = Path("/usr/bin/chromium")
FIXTURES = ROOT / "tests" / "fixtures"
WAIT_MS = 60_000  # the longest a step may take: the worker's first clip includes loading its models
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dog_clip(path: Path) -> Path:
    """Three seconds of fixture dog 182 (sequence 4) crossing a real CCTV frame at 640×360."""
    scene = fit(video_frame(FIXTURES / "videos" / "vtest_pedestrians_15s.mp4"), 640, 360)
    walk = DogWalk(list(mpdd_crops(FIXTURES / "reid" / "mpdd", "182", 4).values()), enter=0.2,
                   leave=2.8, height=150, y=0.95)
    return write_clip(path, compose(scene, [walk], frame_times(3.0, 10)), fps=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`search-party serve` (web server + worker) on a free port, in a session of its own so
    both processes are stopped together."""
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run scripts/system_packages.sh (make test does)")
    data_dir = tmp_path_factory.mktemp("story") / "data"
    settings_for(data_dir)  # shares the exported embedder with the other tests
    port = _free_port()
    env = {**os.environ, "SEARCH_PARTY_DATA_DIR": str(data_dir), "SEARCH_PARTY_EMBEDDER": SHIPPED_EMBEDDER,
           "SEARCH_PARTY_DETECTOR": "picodet_s_416", "TZ": "UTC"}
    env.pop("SEARCH_PARTY_SECRET_KEY", None)
    log = (data_dir / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "search_party.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/login", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the server did not start:\n" + (data_dir / "serve.log").read_text()[-4000:])
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # serve and its worker, which it started
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Story:
    """Screenshots numbered in the order the story takes them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self.taken: list[Path] = []

    def shot(self, page, name: str, **kwargs) -> None:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True, **kwargs)
        self.taken.append(path)


def _page(browser, url: str, errors: list[str]):
    """A new visitor (own cookies); script errors on any of its pages are collected."""
    context = browser.new_context(base_url=url, viewport={"width": 1000, "height": 900}, timezone_id="UTC")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
    def console(msg) -> None:
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"{page.url}: {msg.text} ({msg.location.get('url')})")

    page.on("console", console)
    return page


def sign_up(page, email: str, name: str) -> None:
    page.goto("/signup")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Name others see (optional)").fill(name)
    page.get_by_label("Password (at least 10 characters)").fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/cameras")


def add_camera(page, name: str, lat: float, lon: float) -> None:
    page.get_by_role("link", name="Add a camera").click()
    page.get_by_label("Latitude").fill(str(lat))
    page.get_by_label("Longitude").fill(str(lon))
    page.get_by_label("Name (only you see it)").fill(name)
    page.get_by_role("button", name="Add the camera").click()
    page.wait_for_url(re.compile(r".*/cameras/\d+$"))


def test_the_whole_story(server, browser, tmp_path) -> None:
    story = Story(tmp_path / "browser-story")
    errors: list[str] = []
    expect.set_options(timeout=WAIT_MS)
    clip = dog_clip(tmp_path / "front-gate-0612.mp4")

    # --- a neighbour signs up, adds a camera, opts it in and uploads a clip with a dog
    neighbour = _page(browser, server, errors)
    sign_up(neighbour, "sam@example.org", "Sam")
    story.shot(neighbour, "neighbour-signed-up")
    add_camera(neighbour, "front gate", *CAMERA)
    expect(neighbour.get_by_text("Opt this camera in?")).to_be_visible()
    story.shot(neighbour, "camera-added-opted-out")
    neighbour.get_by_label(re.compile("Yes, search this camera")).check()
    neighbour.get_by_role("button", name="Opt in this camera").click()
    expect(neighbour.locator(".badge.on")).to_have_text("Opted in")
    neighbour.wait_for_load_state()  # upload.js listens from the page's load on (see the wizard below)
    neighbour.locator("#upload-form input[type=file]").set_input_files(str(clip))
    expect(neighbour.locator("#upload-list li.status-done")).to_contain_text("done: 1 animal found")
    # The page's own list of clips follows too, without a reload (before, it said "No clips yet").
    expect(neighbour.locator("#clip-list tr[data-clip-id] .status-done")).to_contain_text("done: 1 animal found")
    expect(neighbour.locator("#no-clips")).to_be_hidden()
    story.shot(neighbour, "clip-uploaded-and-processed")

    # --- a second neighbour adds a camera right beside it and never opts it in
    other = _page(browser, server, errors)
    sign_up(other, "kim@example.org", "Kim")
    add_camera(other, "porch", CAMERA[0] + 0.0002, CAMERA[1])
    expect(other.locator(".badge.off")).to_have_text("Opted out")
    expect(other.locator("#upload-form")).to_have_count(0)  # nothing can be uploaded to it

    # --- a pet owner reports the dog lost; the wizard refuses a photo without a dog
    owner = _page(browser, server, errors)
    sign_up(owner, "alex@example.org", "Alex")
    owner.get_by_role("link", name="Lost & found").click()
    owner.get_by_role("link", name="Report a lost dog").click()
    # The wizard's script shows its steps once it listens: a photo chosen before that (a loaded
    # machine runs the deferred script late) would never be checked.
    expect(owner.locator("#wizard-steps")).to_be_visible()
    photos = owner.get_by_label(re.compile("Photos of your pet"))
    photos.set_input_files(str(PERSON_PHOTO))
    expect(owner.locator("#photo-checks li.problem")).to_contain_text("no dog found in this photo")
    owner.get_by_role("button", name="Next: where").click()
    expect(owner.locator("fieldset[data-step='1'] .step-problem")).to_contain_text("Add at least one photo")
    story.shot(owner, "wizard-refuses-a-photo-without-a-dog")
    photos.set_input_files(str(OWNER_PHOTO))
    expect(owner.locator("#photo-checks li.ok")).to_contain_text("Dog found in this photo")
    assert owner.evaluate("document.querySelector('#photos').files.length") == 1  # only the dog photo is sent
    story.shot(owner, "wizard-accepts-the-dog-photo")
    owner.get_by_role("button", name="Next: where").click()
    owner.get_by_label("Latitude").fill(str(LAST_SEEN[0]))
    owner.get_by_label("Longitude").fill(str(LAST_SEEN[1]))
    story.shot(owner, "wizard-last-seen-place")
    owner.get_by_role("button", name="Next: when").click()
    owner.get_by_label(re.compile("When was it last seen")).fill(f"{utcnow() - timedelta(hours=2):%Y-%m-%dT%H:%M}")
    owner.get_by_role("button", name="Next: about and contact").click()
    owner.get_by_label("Your pet's name").fill("Rex")
    owner.get_by_label(re.compile("What it looks like")).fill("Brown, red collar, friendly")
    owner.get_by_role("button", name="Start the search").click()
    owner.wait_for_url(re.compile(r".*/reports/\d+$"))
    report_url = owner.url
    expect(owner.locator("#cameras-in-range")).to_contain_text("1 opted-in camera")  # Kim's is not counted
    expect(owner.locator("#requests-sent")).to_contain_text("1 camera owner asked")
    expect(owner.locator("#no-sightings")).to_be_visible()
    story.shot(owner, "search-started")

    # --- the neighbour gets the request and shares it; the other neighbour is never asked
    neighbour.get_by_role("link", name="Requests").click()
    expect(neighbour.get_by_role("heading", name="Could this be Rex?")).to_be_visible()
    story.shot(neighbour, "neighbour-asked")
    neighbour.get_by_role("button", name="Share this sighting").click()
    expect(neighbour.get_by_text("you shared it")).to_be_visible()
    story.shot(neighbour, "neighbour-shared")
    other.get_by_role("link", name="Requests").click()
    expect(other.get_by_text("No requests are waiting for you.")).to_be_visible()
    other.get_by_role("link", name="Activity").click()
    expect(other.locator("main")).not_to_contain_text("Rex")
    story.shot(other, "never-opted-in-camera-never-asked")

    # --- the owner sees the sighting on the map and the timeline, with a coarse place
    owner.goto(report_url)
    expect(owner.locator("#sightings-map")).to_have_attribute("data-ready", "1")
    expect(owner.locator(".leaflet-interactive")).not_to_have_count(0)
    timeline = owner.locator("#timeline li")
    expect(timeline).to_have_count(1)
    expect(timeline).to_contain_text(re.compile(r"Area A: about \d+ m from where\s+Rex was last seen"))
    expect(owner.locator("#requests-sent")).to_contain_text("1 shared")
    body = owner.locator("body").inner_text()
    assert "front gate" not in body and f"{CAMERA[0]:.4f}" not in body  # never the camera's name or place
    story.shot(owner, "sighting-on-map-and-timeline")

    # --- a printable flyer, then the dog is home
    owner.get_by_role("link", name="Print a flyer").click()
    expect(owner.get_by_role("heading", name="Have you seen Rex?")).to_be_visible()
    owner.emulate_media(media="print")
    story.shot(owner, "flyer-as-printed")
    owner.emulate_media(media="screen")
    owner.goto(report_url)
    owner.get_by_role("link", name="Rex is found").click()
    owner.get_by_role("button", name="Yes, Rex is found").click()
    expect(owner.get_by_role("heading", name="Rex is found")).to_be_visible()
    expect(owner.locator("#sightings-checked")).to_contain_text("none any more")
    story.shot(owner, "marked-found")

    assert len(story.taken) == 13 and all(p.stat().st_size > 0 for p in story.taken)
    assert errors == []  # no script error and no refused resource (CSP) on any page


def test_the_lost_dog_wizard_with_javascript_off(server, browser, tmp_path) -> None:
    """A pet owner whose browser runs no script: the time-zone list shows beside the last-seen
    time; an unreadable photo brings the wizard back with everything typed; the report then
    keeps the time in the zone chosen (10:30 in New York is 14:30 or 15:30 UTC, never 10:30)."""
    context = browser.new_context(base_url=server, java_script_enabled=False, timezone_id="UTC")
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    sign_up(page, "nojs@example.org", "Robin")
    page.goto("/reports/new")
    zone = page.get_by_label("Time zone of that time")
    expect(zone).to_be_visible()
    unreadable = tmp_path / "rex.jpg"
    unreadable.write_text("this is not a photo")
    day = (utcnow() - timedelta(days=1)).date()
    page.get_by_label(re.compile("Photos of your pet")).set_input_files(str(unreadable))
    page.get_by_label("Latitude").fill(str(LAST_SEEN[0]))
    page.get_by_label("Longitude").fill(str(LAST_SEEN[1]))
    page.get_by_label(re.compile("When was it last seen")).fill(f"{day}T10:30")
    zone.select_option("America/New_York")
    page.get_by_label("Your pet's name").fill("Rex")
    page.get_by_label(re.compile("What it looks like")).fill("Brown, red collar")
    page.get_by_role("button", name="Start the search").click()
    expect(page.locator("p.alert:not(.step-problem)")).to_contain_text("choose the photos again")
    expect(page.get_by_label("Your pet's name")).to_have_value("Rex")
    expect(page.get_by_label(re.compile("What it looks like"))).to_have_value("Brown, red collar")
    expect(page.get_by_label(re.compile("When was it last seen"))).to_have_value(f"{day}T10:30")
    expect(page.get_by_label("Time zone of that time")).to_have_value("America/New_York")
    page.get_by_label(re.compile("Photos of your pet")).set_input_files(str(OWNER_PHOTO))
    page.get_by_role("button", name="Start the search").click()
    page.wait_for_url(re.compile(r".*/reports/\d+$"))
    report = page.request.get(page.url.replace("/reports/", "/api/reports/")).json()["report"]
    assert report["last_seen"][11:16] in ("14:30", "15:30"), report["last_seen"]  # EDT or EST
    context.close()
