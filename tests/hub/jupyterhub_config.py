# JupyterHub configuration for the tutorials on one machine: local Unix users, LocalProcessSpawner,
# configurable-http-proxy, a read-only shared dataset. `make hub-test` runs it (tests/hub/test_hub.py)
# and docs/jupyterhub.md explains each setting; a real deployment swaps the test authenticator for
# PAM or OAuth and keeps the rest.
#
# Settings come from the environment, so the test and an administrator use the same file:
#   MLWF_HUB_ENV        the Python environment users run (mlwf_nb, JupyterLab, the mlwf kernel): it must be
#                       readable and executable by every user, so not under root's private home
#   MLWF_HUB_PROXY      the configurable-http-proxy executable (npm)
#   MLWF_HUB_STATE      a root-only folder for the hub's database, cookie secret and proxy token
#   MLWF_HUB_DATA       the shared, read-only dataset folder the tutorials read
#   MLWF_HUB_TUTORIALS  the tutorial notebooks copied into each new user's ~/tutorials
#   MLWF_HUB_PRESET     the tutorials' preset on this hub (default: the notebooks' own)
#   MLWF_HUB_PORT       the public port (127.0.0.1 only)
#   MLWF_HUB_USERS      the users allowed in, comma separated
#   MLWF_HUB_PASSWORD   the test authenticator's shared password (set: the test authenticator is used)
# ruff: noqa
import os
import pwd
from pathlib import Path

c = get_config()  # type: ignore[name-defined]  # noqa: F821

ENV = Path(os.environ["MLWF_HUB_ENV"])
STATE = Path(os.environ["MLWF_HUB_STATE"])
DATA = os.environ["MLWF_HUB_DATA"]
TUTORIALS = Path(os.environ["MLWF_HUB_TUTORIALS"])
PRESET = os.environ.get("MLWF_HUB_PRESET", "")

# -- network: loopback only ------------------------------------------------------------------------
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = int(os.environ.get("MLWF_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("MLWF_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('MLWF_HUB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [os.environ["MLWF_HUB_PROXY"]]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")

# -- the hub's own state, private to root ----------------------------------------------------------
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")

# -- who may log in ------------------------------------------------------------------------------
users = {u for u in os.environ.get("MLWF_HUB_USERS", "").split(",") if u}
c.Authenticator.allowed_users = users
if os.environ.get("MLWF_HUB_PASSWORD"):
    c.JupyterHub.authenticator_class = "dummy"  # the test authenticator: one shared password
    c.DummyAuthenticator.password = os.environ["MLWF_HUB_PASSWORD"]
else:
    c.JupyterHub.authenticator_class = "pam"  # the machine's own passwords

# -- each user's server: a local process running as that Unix user ---------------------------------
def _home(spawner) -> str:
    return pwd.getpwnam(spawner.user.name).pw_dir


c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(ENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab/tree/tutorials/01_land_cover_quickstart.ipynb"
c.Spawner.start_timeout = 180  # a first start imports JupyterLab on a busy machine
c.Spawner.http_timeout = 180
c.Spawner.environment = {
    "PATH": f"{ENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
    "KERAS_BACKEND": "tensorflow",
    # runs live in the user's home, private to them (run folders are created 0700)
    "MLWF_RUNS_DIR": lambda spawner: os.path.join(_home(spawner), "runs"),
}
c.Spawner.cpu_limit = None  # LocalProcessSpawner cannot enforce limits: set execution.jobs in the spec


def copy_tutorials(spawner) -> None:
    """Before a user's first start: the tutorials in ~/tutorials, parameterised for this hub, owned by the user.

    ``dataset_dir`` points at the shared read-only dataset (and ``preset`` at ``MLWF_HUB_PRESET`` when set),
    injected after the parameters cell as papermill does; a user's own edits are never overwritten.
    """
    import nbformat

    pw = pwd.getpwnam(spawner.user.name)
    target = Path(_home(spawner)) / "tutorials"
    if target.exists():
        return
    target.mkdir(mode=0o700)
    params = {"dataset_dir": DATA, **({"preset": PRESET} if PRESET else {})}
    for src in sorted(TUTORIALS.glob("*.ipynb")):
        nb = nbformat.read(src, as_version=4)
        at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        code = "# Parameters of this hub\n" + "\n".join(f"{k} = {v!r}" for k, v in params.items())
        cell = nbformat.v4.new_code_cell(code, metadata={"tags": ["injected-parameters"]})
        nb.cells.insert(at + 1, cell)  # where papermill puts its injected parameters
        nbformat.write(nb, target / src.name)
    for path in [target, *target.iterdir()]:
        os.chown(path, pw.pw_uid, pw.pw_gid)


c.Spawner.pre_spawn_hook = copy_tutorials
