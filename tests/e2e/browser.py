"""A real headless Chromium (Debian's chromium + chromedriver) driven by
selenium, for the dashboard's tests. Screenshots go to $CORRAL_TEST_ARTIFACTS
(or a temp dir the test names), never into the repository."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.keys import Keys

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--window-size=1400,1000")


def require_chromium() -> None:
    """Fail loudly (never skip) when the browser is missing: scripts/install.sh
    installs it (scripts/debian-packages.txt)."""
    for tool in ("chromium", "chromedriver"):
        if shutil.which(tool) is None:
            raise AssertionError(f"{tool} is not installed: run scripts/install.sh "
                                 "(it apt-installs scripts/debian-packages.txt)")


class Browser:
    def __init__(self, ca_path: Path, artifacts: Path) -> None:
        require_chromium()
        self.artifacts = artifacts
        self.profile = Path(tempfile.mkdtemp(prefix="corral-chromium-"))
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        # The cluster's CA is its own; the test trusts the serving certificate as
        # the browser of an operator who imported that CA would.
        options.add_argument("--ignore-certificate-errors")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(shutil.which("chromedriver") or CHROMEDRIVER)
        self.driver = webdriver.Chrome(options=options, service=service)

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    def go(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def call(self, module: str, function: str) -> Any:
        """What ``function()`` of the page's own module ``module`` (its URL under
        /ui/static/js/) returns: the same module instance the page runs."""
        return self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "import(arguments[0]).then((m) => done(m[arguments[1]]()), (e) => done(String(e)));",
            f"/ui/static/js/{module}", function)

    def text(self, selector: str) -> str:
        """The text of the first element matching ``selector`` ("" if none)."""
        return str(self.js("const e = document.querySelector(arguments[0]);"
                           "return e ? e.textContent : '';", selector))

    def click(self, selector: str) -> bool:
        """Click the first element matching ``selector``; False if there is none yet."""
        return bool(self.js("const e = document.querySelector(arguments[0]);"
                            "if (!e || e.disabled) return false; e.click(); return true;",
                            selector))

    def type_into(self, selector: str, value: str) -> None:
        """Replace the field's text as a person would (select all, type): each key is
        an input event, so a re-render in between cannot leave old text behind."""
        element = self.driver.find_element("css selector", selector)
        element.send_keys(Keys.CONTROL, "a")
        element.send_keys(value if value else Keys.DELETE)

    def rows(self, selector: str, key: str) -> dict[str, str]:
        """data-<key> → the row's text, for the rows of a table."""
        got = self.js("return [...document.querySelectorAll(arguments[0])].map("
                      "r => [r.dataset[arguments[1]], r.textContent]);", selector, key)
        return {str(k): str(v) for k, v in got}

    def screenshot(self, name: str) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def script_errors(self) -> list[str]:
        """Errors the page's scripts raised (failed requests, e.g. an expected 401,
        are logged by the browser as "network" entries and are left out)."""
        return [e["message"] for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and e.get("source") != "network"]


def artifacts_dir(default: Path) -> Path:
    return Path(os.environ.get("CORRAL_TEST_ARTIFACTS") or default)
