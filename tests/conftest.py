"""Fixtures shared by every area: temporary lakes and the real data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from visionlake.config import shared_data_dir

pytest_plugins = ["pytester"]  # tests/reliability/test_checked_fixtures.py runs pytest on a tiny suite


@pytest.fixture
def lake(tmp_path: Path, request: pytest.FixtureRequest):
    """A fresh embedded lake in a temporary folder; ``visionlake check`` must pass on what the test leaves."""
    from visionlake.lake import Lake

    lk = Lake(tmp_path / "lake")
    yield lk
    lk.close()
    assert_lake_checks(lk.root, request)


def assert_lake_checks(root: Path, request: pytest.FixtureRequest | None = None) -> None:
    """Issue 12: every lake a test leaves behind passes ``visionlake check`` (catalog, indexes vs
    catalog, derived files, key). Tests that damage their lake on purpose mark ``damages_lake``."""
    import time

    _LAKES.checked.add(Path(root).resolve())
    if request is not None and request.node.get_closest_marker("damages_lake") is not None:
        return
    if not (root / "lake.json").exists():
        return
    from visionlake.check import check_lake

    start = time.perf_counter()
    rep = check_lake(root)
    _LAKES.seconds += time.perf_counter() - start
    _LAKES.count += 1
    assert rep["ok"], f"visionlake check fails on the lake this test left: {rep['problems']}"


class _LakeTracker:
    """Which lakes the tests open, so teardown can ``check`` each once (issue 12).

    Autouse fixtures per module and per test (:func:`check_module_lakes`, :func:`check_test_lakes`)
    collect every lake opened in this process while they are active (``Lake.__init__`` is wrapped
    for the session) and check them when they end. A lake is recorded in the innermost active scope
    that does not know it yet, so a module fixture's lake is checked once at the end of the module,
    not after each test. Lakes made only by a subprocess (the CLI run as ``visionlake ...``) are
    found on disk: at the end of a test or module, every folder holding a ``lake.json`` under the
    temporary folders made while it ran (``tmp_path``, ``tmp_path_factory.mktemp``, ``pytester``).
    The key: a lake with ``keys/lake.key`` is checked with that file (a test may open it with a
    wrong ``VISIONLAKE_KEY`` on purpose); a lake without one with the ``VISIONLAKE_KEY`` of its
    first in-process opening (``monkeypatch`` is undone by then).
    """

    def __init__(self) -> None:
        self.scopes: list[dict[Path, str | None]] = []
        self.checked: set[Path] = set()  # checked (or exempted by ``damages_lake``) already
        self.paused = False
        self.seconds = 0.0  # time spent in the teardown checks, shown in the terminal summary
        self.count = 0

    def wrap(self, real):  # noqa: ANN001, ANN201 - Lake.__init__ in, the recording one out
        import os

        tracker = self

        def init(lake_self, *args, **kwargs):  # noqa: ANN001, ANN202 - same signature as Lake.__init__
            real(lake_self, *args, **kwargs)
            if tracker.scopes and not tracker.paused:
                root = Path(lake_self.root).resolve()
                if not any(root in scope for scope in tracker.scopes):
                    tracker.scopes[-1][root] = os.environ.get("VISIONLAKE_KEY")

        return init

    def check(self, roots: dict[Path, str | None], where: str) -> None:
        import os
        import time

        from visionlake.check import check_lake

        found = []
        old = os.environ.get("VISIONLAKE_KEY")
        self.paused = True
        start = time.perf_counter()
        try:
            for root, key in roots.items():
                if root in self.checked or not (root / "lake.json").exists():
                    continue
                self.checked.add(root)
                if key is None or (root / "keys" / "lake.key").exists():
                    os.environ.pop("VISIONLAKE_KEY", None)
                else:
                    os.environ["VISIONLAKE_KEY"] = key
                rep = check_lake(root)
                self.count += 1
                if not rep["ok"]:
                    found.append(f"{root}: {rep['problems'][:5]}")
        finally:
            self.paused = False
            self.seconds += time.perf_counter() - start
            if old is None:
                os.environ.pop("VISIONLAKE_KEY", None)
            else:
                os.environ["VISIONLAKE_KEY"] = old
        assert not found, f"visionlake check fails on lakes {where} left: " + "; ".join(found)


def lakes_under(folder: Path) -> list[Path]:
    """Every folder under ``folder`` holding a ``lake.json`` (not descending into a lake): the lakes a
    subprocess made there. A walk of names only, so a test folder of photos costs little."""
    import os

    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        if "lake.json" in filenames:
            found.append(Path(dirpath).resolve())
            dirnames.clear()
    return found


_LAKES = _LakeTracker()


@pytest.fixture(scope="session", autouse=True)
def track_lakes():
    """Wrap ``Lake.__init__`` for this session (restored at its end) so that opened lakes are recorded."""
    from visionlake.lake import Lake

    real = Lake.__init__
    Lake.__init__ = _LAKES.wrap(real)  # type: ignore[method-assign]
    yield _LAKES
    Lake.__init__ = real  # type: ignore[method-assign]


def _in_suite(request: pytest.FixtureRequest) -> bool:
    """Every test under this folder is checked (issue 12); a test file elsewhere (none today) is not."""
    try:
        Path(str(request.node.path)).resolve().relative_to(Path(__file__).parent.resolve())
    except ValueError:
        return False
    return True


def _track(request: pytest.FixtureRequest, scope: str):
    """Collect the lakes opened (or made by a subprocess) while this scope is active; check them when
    it ends. A finding fails the test (for a module-scoped lake: the module's last test, at teardown).
    Lakes of a test marked ``damages_lake`` are not checked, and not later by its module either."""
    if not _in_suite(request):
        yield
        return
    roots: dict[Path, str | None] = {}
    base = request.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    before = set(base.iterdir())
    _LAKES.scopes.append(roots)
    try:
        yield
    finally:
        # by identity: two empty dicts are equal, and ``list.remove`` would take the other scope's
        _LAKES.scopes[:] = [scope for scope in _LAKES.scopes if scope is not roots]
    for folder in sorted(set(base.iterdir()) - before):  # tmp_path, tmp_path_factory.mktemp, pytester
        for root in lakes_under(folder):
            roots.setdefault(root, None)
    if scope == "function" and request.node.get_closest_marker("damages_lake") is not None:
        _LAKES.checked.update(roots)
        return
    _LAKES.check(roots, request.node.nodeid)


@pytest.fixture(scope="module", autouse=True)
def check_module_lakes(request: pytest.FixtureRequest, track_lakes):
    """Issue 12: lakes opened by module-scoped fixtures pass ``visionlake check`` when the module ends."""
    yield from _track(request, "module")


@pytest.fixture(autouse=True)
def check_test_lakes(request: pytest.FixtureRequest, check_module_lakes):
    """Issue 12: lakes a test (and its function-scoped fixtures) opened pass ``visionlake check``."""
    yield from _track(request, "function")


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's reporter
    """How much the teardown checks cost (issue 12 keeps them cheap)."""
    if _LAKES.count:
        terminalreporter.write_line(
            f"visionlake check at teardown: {_LAKES.count} lakes in {_LAKES.seconds:.1f} s")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or ``VISIONLAKE_DATA``); tests needing it skip with a clear message."""
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real data folder not found at {root}: set VISIONLAKE_DATA to run this test")
    return root


@pytest.fixture(scope="session")
def products_dir(shared_data: Path) -> Path:
    """The 5,050 Myntra product photos."""
    p = shared_data / "fashion_products" / "images"
    if not p.is_dir():
        pytest.skip(f"{p} not found")
    return p


@pytest.fixture(scope="session")
def lfw_dir(shared_data: Path) -> Path:
    """LFW (deep-funneled) with pairs files."""
    p = shared_data / "lfw"
    if not (p / "images").is_dir():
        pytest.skip(f"{p}/images not found")
    return p


@pytest.fixture(scope="session")
def real_model():
    """``real_model(name)``: the verified folder of a real model from the user's model cache.

    CI fetches the real files the way a user does (``visionlake models fetch``, in scripts/setup.sh);
    elsewhere a test that needs them skips and says which command brings them.
    """
    from visionlake.errors import ModelUnavailable
    from visionlake.models import model_dir

    def get(name: str) -> Path:
        try:
            return model_dir(name)
        except ModelUnavailable as exc:
            pytest.skip(f"model {name} not available ({exc.message[:80]}...): run `visionlake models fetch {name}`")

    return get
