"""/ and /healthz answer from the health kept in memory (search_party.health.Monitor): a flood of
anonymous requests never makes the server hash its model files, and no client ever sees a path
or a file name.  Real app, real model files copied into a model folder of the test's own."""

from __future__ import annotations

import json
import shutil
import time
from datetime import timedelta

from web_helpers import app_config

from embeddings import registry
from web import create_app
from web.home import EXTENSION


def test_health_is_verified_once_answered_from_memory_and_never_shows_a_path(settings, tmp_path):
    """Tried: the detector file altered on disk after the first check, then 30 anonymous hits
    (before, each one hashed ~37 MB and the 10th already answered 503 with the file's full path);
    then the background re-check, which finds it and still names no path."""
    models = tmp_path / "models"
    models.mkdir()
    detector = models / registry.get(settings.detector).filename
    shutil.copy(registry.locate(settings.detector, settings.vision_runtime()), detector)
    app = create_app(app_config(settings.model_copy(update={"model_dir": models})))
    client = app.test_client()
    first = client.get("/healthz")
    assert first.status_code == 200 and first.json["ok"] and first.json["checks"]["models"]["ok"]

    detector.write_bytes(b"not the pinned detector")
    for _ in range(15):
        assert client.get("/healthz").status_code == 200  # from memory: nothing was hashed again
        assert client.get("/").status_code == 200

    monitor = app.extensions[EXTENSION]
    monitor.recheck_every = timedelta(0)
    assert client.get("/healthz").status_code == 200  # answers at once; the re-check runs behind it
    deadline = time.monotonic() + 30
    while (answer := client.get("/healthz")).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer.status_code == 503 and not answer.json["checks"]["models"]["ok"]
    page = client.get("/").get_data(as_text=True)
    assert "not ready" in page and "missing or altered" in page
    for shown in (json.dumps(answer.json), page):
        assert str(tmp_path) not in shown and detector.name not in shown and "/models" not in shown
    assert detector.name in monitor.current().checks[0].detail  # the operator's detail keeps it
