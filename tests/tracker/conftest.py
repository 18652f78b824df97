"""Fixtures for the tracker's browser tests: Debian's Chromium driven by Playwright, real local servers."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.tracker.servers import PageServer, RecordingCollector

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context()
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def pages() -> Iterator[PageServer]:
    s = PageServer().start()
    yield s
    s.stop()


@pytest.fixture
def collector() -> Iterator[RecordingCollector]:
    c = RecordingCollector().start()
    yield c
    c.stop()


def snippet(commands: list[list[Any]], src: str, attrs: str = "") -> str:
    """The README snippet: a `_pixel` queue with `commands`, then the async script tag."""
    pushes = "".join(f"_pixel.push({json.dumps(c)});" for c in commands)
    return (
        f"<script>window._pixel=window._pixel||[];{pushes}</script>"
        f'<script async src="{html.escape(src)}"{attrs}></script>'
    )


def page_html(head: str, body: str = "", title: str = "Test page") -> str:
    return f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title>{head}</head><body>{body}</body></html>"
