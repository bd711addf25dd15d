"""The tutorials on a real JupyterHub: two local users log in through Chromium and run notebook 01.

Run by ``make hub-test`` (as root), which builds what this needs from the project's own files:
the users' Python environment from ``/usr/bin/python3`` outside root's private home
(``MLWF_HUB_ENV``: mlwf_nb, JupyterHub, JupyterLab, the mlwf kernel) and configurable-http-proxy from
npm (``tests/hub/package.json``). The test itself creates two Unix users, a read-only shared dataset
and the hub (``tests/hub/jupyterhub_config.py``: 127.0.0.1, the test authenticator,
LocalProcessSpawner), then checks:

* each user logs in, the hub spawns their server as their Unix user, notebook 01 runs to the end
  and the monitor in the page shows the run finished (``Success``, 100 %);
* the run lives in the user's home, and the other user can neither list nor read it (as a process
  of that user, and through the hub);
* the shared dataset is read by both runs and cannot be written by either user.

Screenshots of both users' notebooks go to ``test-artifacts/hub-<user>.png``.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.notebooks.browser import (
    ALL_CELLS_DONE,
    ARTIFACTS,
    LAYOUT_PROBLEMS,
    ROOT,
    WIDTH,
    browser_settings,
    follow_notebooks,
    free_port,
    full_page_screenshot,
    launch,
    log_tail,
    run_all_cells,
    wait_http,
)

USERS = ("mlwf-hub-ada", "mlwf-hub-bo")

pytestmark = [pytest.mark.hub, pytest.mark.slow, pytest.mark.requires_chromium,
              pytest.mark.skipif("MLWF_HUB_ENV" not in os.environ,
                                 reason="run by `make hub-test`, which builds the hub's environment")]


def _as_user(user: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` as ``user`` (a login-less process of that Unix user)."""
    return subprocess.run(["runuser", "-u", user, "--", *cmd], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def users():
    if os.geteuid() != 0:
        pytest.fail("make hub-test runs as root: it creates Unix users and the hub spawns servers as them")
    for user in USERS:
        subprocess.run(["userdel", "-r", user], capture_output=True)  # left over from an interrupted run
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", user], check=True)
        # the test's browser: every cell on the page (the screenshot and the checks see the last ones too), no news
        home = Path(pwd.getpwnam(user).pw_dir)
        browser_settings(home / ".jupyter" / "lab" / "user-settings")
        subprocess.run(["chown", "-R", f"{user}:", str(home / ".jupyter")], check=True)
    yield USERS
    for user in USERS:
        subprocess.run(["pkill", "-u", user], capture_output=True)  # their servers, kernels and runs
        time.sleep(0.5)
        subprocess.run(["userdel", "-r", user], capture_output=True)


@pytest.fixture(scope="module")
def shared_data(tmp_path_factory) -> Path:
    """A tiny GID-like dataset with its manifest, owned by root, readable by all, writable by nobody else."""
    prefix = Path(os.environ.get("MLWF_HUB_PREFIX", Path(os.environ["MLWF_HUB_ENV"]).parent))
    data = prefix / "data" / "gid-synth-tiny"
    shutil.rmtree(data, ignore_errors=True)
    mlwf = str(Path(os.environ["MLWF_HUB_ENV"]) / "bin" / "mlwf")
    subprocess.run([mlwf, "synth", str(data), "--scenes", "6", "--size", "96", "96", "--seed", "0"], check=True,
                   capture_output=True)
    subprocess.run([mlwf, "data", "manifest", str(data)], check=True, capture_output=True)
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(prefix / "data")], check=True)
    return data


@pytest.fixture(scope="module")
def hub(users, shared_data, tmp_path_factory):
    state = Path(tmp_path_factory.mktemp("hub-state"))
    state.chmod(0o700)
    port = free_port()
    env = {**os.environ, "MLWF_HUB_STATE": str(state), "MLWF_HUB_DATA": str(shared_data),
           "MLWF_HUB_TUTORIALS": str(ROOT / "notebooks"), "MLWF_HUB_PRESET": "tiny",
           "MLWF_HUB_PORT": str(port), "MLWF_HUB_API_PORT": str(free_port()),
           "MLWF_HUB_PROXY_API_PORT": str(free_port()), "MLWF_HUB_USERS": ",".join(users),
           "MLWF_HUB_PASSWORD": secrets.token_hex(8)}
    env.pop("PYTEST_CURRENT_TEST", None)
    log = (state / "hub.log").open("w")
    hub_bin = Path(os.environ["MLWF_HUB_ENV"]) / "bin" / "jupyterhub"
    proc = subprocess.Popen([str(hub_bin), "-f", str(ROOT / "tests" / "hub" / "jupyterhub_config.py")],
                            cwd=state, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/hub/api", timeout=120)
        yield {"url": f"http://127.0.0.1:{port}", "password": env["MLWF_HUB_PASSWORD"], "state": state,
               "data": shared_data}
    finally:
        proc.terminate()  # stops the proxy; the users' servers are ended with the users
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        print("hub log tail:\n" + (state / "hub.log").read_text()[-3000:])


NOTEBOOK_DONE = f"""() => [...document.querySelectorAll('.mlwf-status')].some(e => e.innerText.includes('Success'))
                         && ({ALL_CELLS_DONE})()"""
"""The monitor in the page shows the run finished and every cell has run."""


def _login_and_run(browser, hub: dict, user: str):
    """Log ``user`` in, let the hub spawn their server, open notebook 01 and run all its cells."""
    context = browser.new_context(viewport={"width": WIDTH, "height": 1000})
    page = context.new_page()
    page.goto(f"{hub['url']}/hub/login", timeout=120_000)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", hub["password"])
    page.click("input[type=submit], button[type=submit]")
    # the spawn-pending page redirects to the server's default url: notebook 01 in JupyterLab
    page.wait_for_function(f"() => location.pathname.startsWith('/user/{user}/lab')"
                           " || (document.body && document.body.innerText.includes('500'))", timeout=240_000)
    if f"/user/{user}/lab" not in page.url:
        pytest.fail(f"{user}: the hub did not start the server: {page.inner_text('body')}\n"
                    f"hub log:\n{log_tail(hub['state'] / 'hub.log')()}", pytrace=False)
    run_all_cells(page)
    return context, page


def test_two_users_run_notebook01_privately_on_a_shared_read_only_dataset(hub, users):
    from playwright.sync_api import sync_playwright

    t0 = time.monotonic()
    with sync_playwright() as pw:
        browser = launch(pw)
        sessions = {user: _login_and_run(browser, hub, user) for user in users}  # both run at once
        # both at once; a cell's error, a stderr box or a dead kernel fails at once with its text and the log
        follow_notebooks({user: page for user, (_context, page) in sessions.items()}, NOTEBOOK_DONE,
                         timeout=900, log=log_tail(hub["state"] / "hub.log"))
        for user, (_context, page) in sessions.items():
            page.locator(".lm-TabBar-tabLabel", has_text="training").last.click()  # curves, matrix, map
            page.wait_for_timeout(500)
            full_page_screenshot(page, ARTIFACTS / f"hub-{user}.png")
            problems = page.evaluate(LAYOUT_PROBLEMS)  # stderr boxes, clipped or broken images, reprs
            assert not problems, f"{user}: {problems}"
            status = [t for t in page.locator(".mlwf-status").all_inner_texts() if t.strip()]
            assert status and all("Success" in t and " 0 failed" in t for t in status), status
            texts = page.locator(".jp-OutputArea-output").all_inner_texts()
            assert any("run finished: Success" in t for t in texts), texts[-5:]
        # through the hub, a user reaches only their own server
        ada, bo = users
        other = sessions[bo][0].request.get(f"{hub['url']}/user/{ada}/api/contents/tutorials",
                                            max_redirects=0)
        assert other.status != 200 or "01_land_cover_quickstart" not in other.text()
        browser.close()
    print(f"two users ran notebook 01 in {time.monotonic() - t0:.0f} s")

    runs = {}
    for user in users:
        home = Path(pwd.getpwnam(user).pw_dir)
        found = sorted((home / "runs").glob("*/workflow.yml"))
        assert len(found) == 1, f"{user}: expected one run under {home / 'runs'}, found {found}"
        run = found[0].parent
        runs[user] = run
        assert run.stat().st_uid == pwd.getpwnam(user).pw_uid
        spec = (run / "spec.yaml").read_text()
        assert str(hub["data"]) in spec  # the run read the shared dataset
        state = json.loads(_as_user(user, str(Path(os.environ["MLWF_HUB_ENV"]) / "bin" / "mlwf"), "status",
                                    str(run), "--json").stdout)
        assert state["dags"]["root"]["state"] == "Success"
    for user, other in ((users[0], users[1]), (users[1], users[0])):
        run = runs[other]
        assert _as_user(user, "cat", str(run / "spec.yaml")).returncode != 0, f"{user} can read {other}'s run"
        assert _as_user(user, "ls", str(run)).returncode != 0, f"{user} can list {other}'s run"
        assert _as_user(user, "ls", str(run.parent)).returncode != 0, f"{user} can list {other}'s run names"
        assert _as_user(other, "cat", str(run / "spec.yaml")).returncode == 0  # the owner can
        probe = hub["data"] / f"written-by-{user}"
        assert _as_user(user, "touch", str(probe)).returncode != 0 and not probe.exists()
        assert _as_user(user, "cat", str(hub["data"] / "dataset.yaml")).returncode == 0
