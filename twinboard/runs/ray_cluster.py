"""Talking to a Ray cluster's job server: the address a launch names resolved to the head's job
server once, one JobSubmissionClient per server, and one `list_jobs` answer per server shared by
every read for LIST_TTL_S (a page over a 500-pair sweep asks Ray once, not 1,000 times).

Ray is imported inside these functions only (twinboard.runs.ray_backend's docstring says why).
"""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from twinboard.runs.state import LauncherError

ADDRESS_ENV = "TWINBOARD_RAY_ADDRESS"  # the cluster when a launch names none; else "auto" (a local head)
LIST_TTL_S = 1.0  # one list_jobs answer serves every read of that cluster for this long
CONNECT_TIMEOUT_S = 3.0  # Ray's client sets no timeout: a head behind a dropped route would hang a page ~2 min
DOWN_TTL_S = 5.0  # a cluster found unreachable is not asked again for this long: a page over 500 pairs
# of a cluster that is down must not wait for 1,000 connection timeouts
INSTALL_HINT = "the Ray backend needs Ray: pip install -r requirements-ray.txt (or pip install twinboard[ray])"


class RayUnavailable(LauncherError):
    """Ray is not installed, or the cluster cannot be reached; the message says which and how to fix it."""


# --- the cluster: addresses, clients and one list of jobs per cluster -------------------------------
_lock = threading.Lock()  # Streamlit sessions are threads: the caches below are shared
_urls: dict[str, str] = {}  # address as given -> the dashboard's http URL
_clients: dict[str, object] = {}  # URL -> JobSubmissionClient
_listed: dict[str, tuple[float, dict[str, object]]] = {}  # URL -> (monotonic s, submission id -> JobDetails)
_down: dict[str, tuple[float, RayUnavailable]] = {}  # URL -> (monotonic s, why) of its last failed list


def default_address() -> str:
    return os.environ.get(ADDRESS_ENV, "").strip() or "auto"


def _ray():
    try:
        from ray import job_submission
    except ImportError as err:
        raise RayUnavailable(f"{INSTALL_HINT} ({err})") from None
    return job_submission


def resolve(address: str | None) -> str:
    """The job server's http URL for `address`: ray://HOST:PORT (Ray Client), HOST:PORT (the head's GCS),
    auto (the cluster on this machine) or the dashboard's http(s)://HOST:8265 itself. Asked once per address."""
    address = (address or default_address()).strip()
    if address.startswith(("http://", "https://")):
        return address.rstrip("/")
    with _lock:
        if address in _urls:
            return _urls[address]
    _ray()
    from ray.dashboard.utils import get_address_for_submission_client

    try:
        url = get_address_for_submission_client(address)
    except Exception as err:  # noqa: BLE001 - ConnectionError, ValueError, Ray's own: all "no cluster there"
        raise RayUnavailable(f"no Ray cluster at {address!r}: {str(err)[:300]}") from None
    with _lock:
        _urls[address] = url
    return url


def _reachable(url: str) -> None:
    """RayUnavailable unless the job server's port takes a connection within CONNECT_TIMEOUT_S."""
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "", port), timeout=CONNECT_TIMEOUT_S).close()
    except (OSError, ValueError) as err:
        raise RayUnavailable(f"cannot reach the Ray job server at {url}: {err}") from None


def client(url: str):
    with _lock:
        found = _clients.get(url)
    if found is not None:
        return found
    job_submission = _ray()
    _reachable(url)
    try:
        made = job_submission.JobSubmissionClient(url)
    except Exception as err:  # noqa: BLE001 - requests' and Ray's errors alike: the server is not there
        raise RayUnavailable(f"cannot reach the Ray job server at {url}: {str(err)[:300]}") from None
    with _lock:
        return _clients.setdefault(url, made)


def listed(url: str, fresh: bool = False) -> dict[str, object]:
    """submission id -> Ray's JobDetails of every job of the cluster, at most LIST_TTL_S old."""
    now = time.monotonic()
    with _lock:
        cached, down = _listed.get(url), _down.get(url)
    if cached and not fresh and now - cached[0] < LIST_TTL_S:
        return cached[1]
    if down and now - down[0] < DOWN_TTL_S:
        raise down[1]
    try:
        _reachable(url)  # list_jobs has no timeout of its own
        jobs = {j.submission_id: j for j in client(url).list_jobs() if j.submission_id}
    except Exception as err:  # noqa: BLE001 - a dropped connection, a head restarting: say so, retry later
        why = err if isinstance(err, RayUnavailable) else RayUnavailable(
            f"cannot list the jobs of the Ray cluster at {url}: {str(err)[:300]}")
        with _lock:
            _clients.pop(url, None)  # reconnect next time: the head may have restarted
            _down[url] = (time.monotonic(), why)
        raise why from None
    with _lock:
        _listed[url] = (time.monotonic(), jobs)
        _down.pop(url, None)
    return jobs


def forget_list(url: str) -> None:
    with _lock:
        _listed.pop(url, None)


def waiting_pairs(url: str, logdir: Path) -> dict[str, str]:
    """run id -> owner ('' for none) of this logdir's pairs with a job Ray still holds back (PENDING)."""
    waiting = {}
    for job in listed(url, fresh=True).values():
        meta = job.metadata or {}
        if meta.get("twinboard_logdir") == str(logdir) and getattr(job.status, "value", job.status) == "PENDING":
            waiting[meta.get("twinboard_run", "")] = meta.get("owner", "")
    return waiting
