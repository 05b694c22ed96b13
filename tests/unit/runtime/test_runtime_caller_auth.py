from __future__ import annotations

import os
from pathlib import Path

import pytest
from agentfleet_runtime.auth import CallerAuth
from agentfleet_runtime.errors import ApiError

from tests.fakes.clock import FakeClock


def kubernetes_secret_dir(root: Path, data: dict[str, str], version: str = "v1") -> Path:
    """The layout the kubelet writes: ..<version>/<key> files, ..data -> ..<version>, <key> -> ..data/<key>."""
    root.mkdir(exist_ok=True)
    target = root / f"..{version}"
    target.mkdir()
    for key, value in data.items():
        (target / key).write_text(value + "\n")
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(target.name)
    os.replace(tmp_link, root / "..data")
    for key in data:
        link = root / key
        if not link.is_symlink():
            link.symlink_to(f"..data/{key}")
    return root


def codes(auth: CallerAuth, header: str | None) -> str | None:
    try:
        auth.check(header)
    except ApiError as exc:
        assert exc.status == 401
        return exc.code
    return None


def test_kubernetes_layout_keys_are_accepted_and_dotfiles_ignored(tmp_path: Path) -> None:
    keys = kubernetes_secret_dir(tmp_path / "keys", {"key": "alpha", "old": "beta"})
    (keys / ".hidden").write_text("gamma")
    auth = CallerAuth(str(keys))
    assert codes(auth, "Bearer alpha") is None
    assert codes(auth, "bearer beta") is None
    assert codes(auth, "Bearer gamma") == "invalid_api_key"
    assert codes(auth, "Bearer ..data") == "invalid_api_key"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Basic alpha", "invalid_api_key"),
        ("Bearer", "invalid_api_key"),
        ("Bearer wrong", "invalid_api_key"),
    ],
)
def test_failures_are_401(tmp_path: Path, header: str | None, code: str) -> None:
    (tmp_path / "key").write_text("alpha")
    assert codes(CallerAuth(str(tmp_path)), header) == code


def test_rotation_is_picked_up_after_the_check_interval(tmp_path: Path) -> None:
    keys = kubernetes_secret_dir(tmp_path / "keys", {"key": "alpha"})
    clock = FakeClock()
    auth = CallerAuth(str(keys), clock=clock)
    assert codes(auth, "Bearer alpha") is None
    # The kubelet's atomic update: a new versioned dir, then the ..data symlink swapped.
    target = keys / "..v2"
    target.mkdir()
    (target / "key").write_text("omega")
    (keys / "..tmp").symlink_to("..v2")
    os.replace(keys / "..tmp", keys / "..data")
    assert codes(auth, "Bearer alpha") is None  # not re-read within the interval
    clock.advance(1.0)
    assert codes(auth, "Bearer omega") is None
    assert codes(auth, "Bearer alpha") == "invalid_api_key"


def test_empty_files_are_not_keys(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("  \n")
    assert codes(CallerAuth(str(tmp_path)), "Bearer  ") == "invalid_api_key"


def test_no_directory_disables_auth() -> None:
    auth = CallerAuth(None)
    assert not auth.enabled
    assert codes(auth, None) is None
