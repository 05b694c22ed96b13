"""The pieces of agent connectors that need no peer: the call-chain header and the bearer token
read from one file of a mounted Secret (auth.tokenFile)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from agentfleet_runtime.call_chain import MAX_NAMES, parse, render
from agentfleet_runtime.config import ConnectorAuth
from agentfleet_runtime.tools.auth import CredentialsError, build_credentials


def test_a_chain_header_parses_to_names_in_order() -> None:
    assert parse(None) == () and parse("") == ()
    assert parse(" support-bot ,billing,, ") == ("support-bot", "billing")
    assert render(("support-bot", "billing")) == "support-bot, billing"
    assert parse(render(("a", "b", "c"))) == ("a", "b", "c")
    # A header cannot make the runtime hold an unbounded list.
    assert len(parse(",".join(f"a{i}" for i in range(1000)))) == MAX_NAMES


async def test_a_bearer_token_file_is_read_from_its_own_directory(tmp_path: Path) -> None:
    keys = tmp_path / "billing-access"
    keys.mkdir()
    (keys / "apiKey").write_text("billing-key\n")
    auth = ConnectorAuth(type="bearer", secret_dir=str(keys), token_file=str(keys / "apiKey"))
    credentials = build_credentials(auth, "billing-desk", timeout=1)
    async with httpx.AsyncClient() as http:
        assert await credentials.headers(http) == {"Authorization": "Bearer billing-key"}
        (keys / "apiKey").unlink()
        with pytest.raises(CredentialsError, match="secret key 'apiKey' is missing") as refused:
            # A fresh reader: the cached one re-reads at most once a second.
            await build_credentials(auth, "billing-desk", timeout=1).headers(http)
    assert "billing-key" not in str(refused.value)
