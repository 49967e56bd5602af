"""The page in a real browser: headless Chromium (Debian's package) uploads an image and reads the top class.

Skipped where Chromium or the Python ``playwright`` package is missing (nothing downloads a browser):
``apt-get install chromium`` and ``pip install playwright``. Set ``DIVEKIT_SCREENSHOTS=docs/images``
to keep the screenshot (``serve-page.png``) there.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from divekit.inference.predict import predict_images
from divekit.runs import resolve_config, train

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a sandbox without a network: no sandbox, no GPU, and no background connections to refuse.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason="no Chromium (apt-get install chromium)"),
    pytest.mark.slow,
]


def start_server(run_dir):
    """``divekit serve RUN --port 0`` in a subprocess; returns it and its address once it listens."""
    process = subprocess.Popen([sys.executable, "-m", "divekit", "serve", str(run_dir), "--port", "0"],
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        found = re.search(r"on (http://127\.0\.0\.1:\d+/)", line)
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
    process.kill()
    raise AssertionError("divekit serve did not start")


def test_upload_an_image_and_read_the_top_class(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    run = tmp_path / "run"
    train(resolve_config("mlp", overrides={"train.progress": False, "train.epochs": 3, "data.val_split": 0.1}),
          out_dir=run, log=lambda m: None)  # fmt: skip
    from divekit.data.digits import load_digits

    image = tmp_path / "digit.png"
    Image.fromarray(load_digits().test.images[0][0].numpy().astype(np.uint8)).save(image)
    (expected,) = predict_images(run, [image], top_k=1)
    process, url = start_server(run)
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 800, "height": 760})
            page.goto(url)
            page.set_input_files("#file", str(image))
            page.click("#send-file")
            page.wait_for_selector("#top li")
            top_class = page.inner_text("#top li .cls")
            shot = tmp_path / "serve-page.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert top_class == expected.top[0][0]
    assert shot.read_bytes()[:4] == b"\x89PNG"
    keep = os.environ.get("DIVEKIT_SCREENSHOTS")
    if keep:
        shutil.copy(shot, Path(keep) / "serve-page.png")
