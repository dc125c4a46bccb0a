"""up / down / status: start a clean devcloud, stop it by PID, report each service.

Ported from the real-openstack recipe's start_all.sh and stop.sh (stackwatch shared reference). The fake
compute driver cannot restart against old state (its node UUID is random per process), so ``up`` always
wipes the state dir and starts every service afresh; ``up`` on a healthy running devcloud changes nothing.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path

from stackwatch.devcloud import (
    bootstrap,
    catalog,
    installer,
    postgres,
    proc,
    rabbit,
    render,
    services,
    spec,
    state,
    swift,
)
from stackwatch.devcloud.errors import DevcloudError, PrerequisiteError, ServiceError
from stackwatch.devcloud.layout import CLOUD_NAME, HOST, REGION, Layout
from stackwatch.devcloud.state import DevCloud, ServiceStatus, Status

Report = Callable[[str], None]


def _layout(layout: Layout | None) -> Layout:
    return layout or Layout()


def status(layout: Layout | None = None) -> Status:
    layout = _layout(layout)
    rows = []
    rpid = rabbit.pid(layout)
    rows.append(
        ServiceStatus(
            "rabbitmq",
            rpid,
            proc.alive(rpid),
            f"amqp://{HOST}:{layout.ports.rabbit}",
            200 if proc.port_open(layout.ports.rabbit) else None,
            str(rabbit.log_dir(layout)),
        )
    )
    ppid = postgres.pid(layout)
    rows.append(
        ServiceStatus(
            "postgresql",
            ppid,
            proc.alive(ppid),
            f"postgresql://{HOST}:{layout.ports.pg}",
            200 if proc.port_open(layout.ports.pg) else None,
            str(postgres.log_file(layout)),
        )
    )
    for svc in services.ALL:
        pid = proc.read_pid(layout.run / f"{svc.name}.pid")
        running = proc.alive(pid)
        url = svc.url(layout)
        code = proc.http_status(url) if (running and url) else None
        rows.append(ServiceStatus(svc.name, pid, running, url, code, svc.log(layout)))
    if swift.enabled(layout):
        for svc in services.SWIFT:
            pid = proc.read_pid(layout.run / f"{svc.name}.pid")
            running = proc.alive(pid)
            url = svc.url(layout)
            code = proc.http_status(url) if (running and url) else None
            rows.append(ServiceStatus(svc.name, pid, running, url, code, svc.log(layout)))
    return Status(tuple(rows), state.load_info(layout))


def down(layout: Layout | None = None, report: Report = lambda _m: None) -> list[str]:
    """Stop every devcloud process by the PID it recorded. Returns what was stopped."""
    layout = _layout(layout)
    stopped: list[str] = swift.stop(layout)  # before Keystone; a no-op when Swift was never started
    for name in stopped:
        report(f"stopped {name}")
    pids = []
    for svc in services.STOP_ORDER:
        pidfile = layout.run / f"{svc.name}.pid"
        pid = proc.read_pid(pidfile)
        if proc.alive(pid):
            # uWSGI: SIGINT is an immediate shutdown (SIGTERM would be a graceful reload)
            os.kill(pid, signal.SIGINT if svc.uwsgi else signal.SIGTERM)
            pids.append((svc.name, pid))
    for name, pid in pids:
        proc.stop_pid(pid, timeout=10)  # already signalled: waits, SIGKILL after 10 s
        stopped.append(f"{name} ({pid})")
        report(f"stopped {name} ({pid})")
    for svc in services.ALL:
        (layout.run / f"{svc.name}.pid").unlink(missing_ok=True)
    for name in rabbit.stop(layout) + postgres.stop(layout):
        stopped.append(name)
        report(f"stopped {name}")
    if layout.etc.exists():
        state.info_file(layout).unlink(missing_ok=True)
    return stopped


def _check_prerequisites(layout: Layout) -> None:
    rabbit.check_installed()
    postgres.bin_dir()
    busy = [f"{name} {port}" for name, port in layout.ports.core().items() if proc.port_open(port)]
    if busy:
        raise PrerequisiteError(
            f"ports already in use by something else: {', '.join(busy)} "
            "(another devcloud under a different STACKWATCH_DEVCLOUD_HOME?)"
        )


def _wipe(layout: Layout) -> None:
    postgres.remove(layout)
    if layout.state.exists():
        shutil.rmtree(layout.state)
    for d in (
        layout.etc,
        layout.logs,
        layout.run,
        layout.rabbit,
        layout.data / "keystone" / "fernet-keys",
        layout.data / "keystone" / "credential-keys",
        layout.data / "nova" / "instances",
        layout.data / "nova" / "locks",
        layout.data / "neutron" / "locks",
    ):
        d.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "staging", "tasks", "locks"):
        (layout.data / "glance" / sub).mkdir(parents=True, exist_ok=True)
    # as root the postgres user may need to traverse it (when the cluster lives in the state dir)
    layout.state.chmod(0o711 if os.geteuid() == 0 else 0o700)


def _start(layout: Layout, svc: services.Service) -> int:
    log = layout.logs / (f"{svc.name}-uwsgi.log" if svc.uwsgi else f"{svc.name}.out")
    return proc.spawn(svc.argv(layout), log, layout.run / f"{svc.name}.pid", cwd=layout.state)


def _wait_http(layout: Layout, svc: services.Service, timeout: float) -> None:
    url = svc.url(layout)
    pidfile = layout.run / f"{svc.name}.pid"

    def ready() -> bool:
        if not proc.alive(proc.read_pid(pidfile)):
            raise ServiceError(
                svc.name,
                "process exited during start",
                svc.log(layout) + " and " + str(layout.logs / f"{svc.name}-uwsgi.log"),
            )
        code = proc.http_status(url)
        return code is not None and code < 500

    if not proc.wait_until(ready, timeout, interval=0.25):
        raise ServiceError(svc.name, f"{url} did not answer within {timeout:.0f} s", svc.log(layout))


def _optional(names: Collection[str]) -> tuple[str, ...]:
    """Validated optional service names (a bare string is one name, not its letters)."""
    if isinstance(names, str):
        names = (names,)
    unknown = sorted(set(names) - set(spec.OPTIONAL_VENVS))
    if unknown:
        raise DevcloudError(
            f"unknown optional devcloud service(s): {', '.join(unknown)} (known: {', '.join(spec.OPTIONAL_VENVS)})"
        )
    return tuple(sorted(set(names)))


def install(layout: Layout | None = None, report: Report = lambda _m: None, services: Collection[str] = ()) -> Path:
    """Install the service venvs if the cache lacks them (no start), plus the optional ``services`` asked
    for; returns the venvs directory."""
    layout = _layout(layout)
    optional = _optional(services)
    installer.ensure_installed(layout, report)
    for name in optional:
        installer.ensure_optional(layout, name, report)
    return layout.venvs


def _add_swift(layout: Layout, info: DevCloud, report: Report, timeout: float) -> DevCloud:
    """Start Swift beside a running healthy devcloud (``up --with swift`` after a plain ``up``): Swift keeps
    no state shared with the other services, so they need no restart (and lose no servers or images)."""
    t0 = time.monotonic()
    busy = swift.busy_ports(layout)
    if busy:
        raise PrerequisiteError(f"ports already in use by something else: {', '.join(busy)}")
    try:
        password = swift.prepare(layout)
        swift.spawn(layout)
        catalog.register_swift(layout, state.read_admin_password(layout), password)
        swift.wait(layout, timeout)
    except BaseException:
        report("swift start failed; stopping the Swift servers (the rest of devcloud keeps running)")
        swift.stop(layout)
        if layout.swift_etc.exists():
            shutil.rmtree(layout.swift_etc)  # so status and the next `up --with swift` see it as not started
        raise
    elapsed = round(time.monotonic() - t0, 1)
    report(f"[{elapsed:6.1f}s] swift up (added to the running devcloud)")
    new = DevCloud(
        **{
            **info.__dict__,
            "endpoints": {**info.endpoints, "object-store": catalog.swift_endpoints(layout)["public"]},
            "timings": {**info.timings, "swift_added": elapsed},
            "services": sorted({*info.services, "swift"}),
        }
    )
    state.save_info(layout, new)
    return new


def remove(name: str, layout: Layout | None = None, report: Report = lambda _m: None) -> DevCloud | None:
    """Stop an optional service on a running devcloud and take it out of the catalog and devcloud.json,
    leaving the rest running: a test that added Swift leaves the session's cloud as the default one (whose
    service list other tests compare), also under STACKWATCH_DEVCLOUD_KEEP=1. Returns the updated info."""
    layout = _layout(layout)
    (name,) = _optional(name)
    for stopped in swift.stop(layout):
        report(f"stopped {stopped}")
    info = state.load_info(layout)
    if layout.clouds_yaml.is_file() and proc.port_open(layout.ports.keystone):
        catalog.unregister_swift(layout, state.read_admin_password(layout))
    for d in (layout.swift_etc, layout.swift_devices):
        if d.exists():
            shutil.rmtree(d)
    if info is None:
        return None
    endpoints = {k: v for k, v in info.endpoints.items() if k != "object-store"}
    timings = {k: v for k, v in info.timings.items() if not k.startswith(name)}
    services = [s for s in info.services if s != name]
    new = DevCloud(**{**info.__dict__, "endpoints": endpoints, "timings": timings, "services": services})
    state.save_info(layout, new)
    return new


def _service(name: str) -> services.Service:
    for svc in services.ALL:
        if svc.name == name:
            return svc
    raise ServiceError(name, "no such devcloud service", ", ".join(s.name for s in services.ALL))


def stop_service(name: str, layout: Layout | None = None) -> None:
    """Stop one OpenStack process of a running devcloud (fault tests: Nova's API away for a while)."""
    layout = _layout(layout)
    _service(name)
    pid = proc.read_pid(layout.run / f"{name}.pid")
    if pid is not None and proc.alive(pid):
        proc.stop_pid(pid)


def start_service(name: str, layout: Layout | None = None, timeout: float = 120.0) -> None:
    """Start a process `stop_service` stopped; returns once it answers (an API) or runs (a worker)."""
    layout = _layout(layout)
    svc = _service(name)
    if proc.alive(proc.read_pid(layout.run / f"{name}.pid")):
        return
    _start(layout, svc)
    if svc.url(layout):
        _wait_http(layout, svc, timeout)


def up(
    layout: Layout | None = None,
    report: Report = lambda _m: None,
    fresh: bool = False,
    timeout: float = 180.0,
    services: Collection[str] = (),
) -> DevCloud:
    """Install if needed, then start a clean devcloud and wait until every API answers and compute is mapped.

    ``services`` adds optional services (``("swift",)``). A healthy running devcloud is returned as is
    unless ``fresh``; if it lacks an optional service asked for, that service is started beside it. Raises a
    DevcloudError naming the failing service and its log.
    """
    layout = _layout(layout)
    optional = _optional(services)
    t0 = time.monotonic()
    timings: dict[str, float] = {}

    def mark(name: str, msg: str) -> None:
        timings[name] = round(time.monotonic() - t0, 1)
        report(f"[{timings[name]:6.1f}s] {msg}")

    if installer.ensure_installed(layout, report):
        mark("install", "OpenStack services installed")
    for name in optional:
        if installer.ensure_optional(layout, name, report):
            mark(f"install_{name}", f"{name} installed")
    current = status(layout)
    if current.up and not fresh and current.cloud is not None:
        if "swift" in optional and not swift.enabled(layout):
            return _add_swift(layout, current.cloud, report, timeout)
        report("devcloud already up")
        return current.cloud
    if current.any_running:
        report("stopping the previous devcloud (the fake compute cannot restart against old state)")
        down(layout)
    t0 = time.monotonic()
    _check_prerequisites(layout)
    busy = swift.busy_ports(layout) if "swift" in optional else []
    if busy:
        raise PrerequisiteError(f"ports already in use by something else: {', '.join(busy)}")
    _wipe(layout)
    admin_password = secrets.token_urlsafe(16)
    service_password = secrets.token_urlsafe(16)
    render.render_all(layout, service_password)
    with ThreadPoolExecutor(max_workers=1) as side:
        # Swift needs nothing of the others to build its rings and start (Keystone only at its first
        # request), so it comes up beside them and adds about a second at the end: registration and wait
        swift_started = side.submit(_start_swift, layout) if "swift" in optional else None
        try:
            _start_all(layout, admin_password, service_password, mark, timeout)
            if swift_started is not None:
                catalog.register_swift(layout, admin_password, swift_started.result())
                swift.wait(layout, timeout)
                mark("swift", "swift proxy, account, container and object servers answering")
        except BaseException:
            # stop what did start (a half-up devcloud only confuses the next run); logs stay until the next up
            report(f"start failed; stopping what started; logs in {layout.logs}")
            if swift_started is not None:
                wait_futures([swift_started])  # its processes have PID files only once it is done
            down(layout)
            raise
    state.write_clouds_yaml(layout, admin_password)
    p = layout.ports
    info = DevCloud(
        home=layout.home,
        state=layout.state,
        logs=layout.logs,
        clouds_yaml=layout.clouds_yaml,
        cloud=CLOUD_NAME,
        auth_url=layout.auth_url,
        amqp_url=layout.amqp_url,
        region=REGION,
        endpoints={
            "identity": layout.auth_url,
            "image": layout.url(p.glance),
            "network": layout.url(p.neutron),
            "placement": layout.url(p.placement),
            "compute": layout.url(p.nova, "/v2.1"),
            **({"object-store": catalog.swift_endpoints(layout)["public"]} if "swift" in optional else {}),
        },
        timings=timings,
        services=list(optional),
    )
    state.save_info(layout, info)
    mark("ready", "devcloud up")
    return DevCloud(**{**info.__dict__, "timings": dict(timings)})


def _start_all(layout: Layout, admin_password: str, service_password: str, mark, timeout: float) -> None:
    with ThreadPoolExecutor(max_workers=5) as pool:
        keystone_db = pool.submit(bootstrap.keystone_db, layout, admin_password)  # SQLite: needs nothing else
        glance_db = pool.submit(bootstrap.glance_db, layout)  # SQLite too
        rab = pool.submit(rabbit.start, layout)
        postgres.start(layout)
        mark("postgres", "postgresql up")
        syncs = [glance_db, pool.submit(bootstrap.neutron_db, layout), pool.submit(bootstrap.nova_db, layout)]
        keystone_db.result()
        mark("keystone_db", "keystone database bootstrapped")
        _start(layout, services.KEYSTONE)
        _wait_http(layout, services.KEYSTONE, timeout)
        mark("keystone", "keystone answering")
        catalog.register(layout, admin_password, service_password)
        mark("catalog", "service catalog registered")
        rab.result()
        mark("rabbitmq", "rabbitmq up")
        for f in syncs:
            f.result()
        mark("db_sync", "glance / neutron / placement / nova databases synced")
    for svc in services.APIS:
        _start(layout, svc)
    _start(layout, services.NOVA_WORKERS[0])  # conductor
    _start(layout, services.NOVA_WORKERS[1])  # scheduler
    for svc in services.APIS:
        _wait_http(layout, svc, timeout)
    mark("apis", "glance, neutron, placement, nova-api answering")
    compute = services.NOVA_WORKERS[2]
    _start(layout, compute)  # after placement answers: a failed provider registration retries only every 60 s

    def registered() -> bool:
        for svc in services.NOVA_WORKERS:
            if not proc.alive(proc.read_pid(layout.run / f"{svc.name}.pid")):
                raise ServiceError(svc.name, "process exited during start", svc.log(layout))
        return bootstrap.compute_registered(layout)

    if not proc.wait_until(registered, timeout, interval=1.0):
        raise ServiceError(
            "nova-compute", f"host not registered and mapped within {timeout:.0f} s", compute.log(layout)
        )
    mark("compute", "nova-compute registered and mapped to cell1")
    catalog.seed(layout, admin_password)
    mark("seed", "flavors m1.tiny, m1.small and image cirros-fake created")


def _start_swift(layout: Layout) -> str:
    """Rings, configs and the four Swift processes; returns the password of the Keystone user ``swift``."""
    password = swift.prepare(layout)
    swift.spawn(layout)
    return password


__all__ = ["DevCloud", "DevcloudError", "ServiceStatus", "Status", "down", "install", "remove", "status", "up"]
