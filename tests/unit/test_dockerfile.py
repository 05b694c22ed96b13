"""Static checks of the Dockerfile: the images' security and shape, without a Docker engine.

A small parser (line continuations, comments, ARG defaults, stages) is enough for the invariants
that matter: both targets exist, final stages run as a numeric non-root user, start the console
script pyproject.toml declares, ship no build tools or HEALTHCHECK, and come from a slim base.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"

# target -> (extra installed into its venv, ENTRYPOINT, EXPOSEd ports)
TARGETS: dict[str, tuple[str, list[str], set[str]]] = {
    "operator": ("operator", ["agentfleet-operator"], {"9090", "8081"}),
    "runtime": ("runtime", ["agentfleet-runtime", "--config", "/etc/agentfleet/config.json"], {"8080"}),
}
BUILD_TOOLS = re.compile(r"\b(apt-get|apt|apk|yum|dnf)\b.*\binstall\b|\bgcc\b|build-essential|\bmake\b")


@dataclass
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def resolve(self, text: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.global_args.get(m.group(1), m.group(0)), text)


def logical_lines(text: str) -> list[str]:
    """Join backslash continuations and drop comments and blank lines."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not current:
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1].rstrip() + " "
            continue
        current += stripped
        if current.strip():
            lines.append(current.strip())
        current = ""
    if current.strip():
        lines.append(current.strip())
    return lines


def parse(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif not stages:
            assert keyword == "ARG", f"only ARG may precede the first FROM, found {keyword}"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args))
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def console_scripts() -> dict[str, str]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)["project"]["scripts"]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)  # the shell form would run under /bin/sh and swallow SIGTERM
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def test_parser_understands_continuations() -> None:
    parsed = parse("ARG B=img:1-slim\nFROM ${B} AS x\nRUN a \\\n  # note\n  && b\nUSER 1:1\n")
    assert parsed.resolve(parsed.stages[0].base) == "img:1-slim"
    assert parsed.stage("x").all("RUN") == ["a && b"]


def test_both_targets_exist_and_names_are_unique(dockerfile: Dockerfile) -> None:
    names = [stage.name for stage in dockerfile.stages if stage.name]
    assert len(names) == len(set(names))
    assert set(TARGETS) <= set(names)


def test_no_healthcheck_anywhere(dockerfile: Dockerfile) -> None:
    # Kubernetes ignores HEALTHCHECK; probes in the manifests are the health checks.
    for stage in dockerfile.stages:
        assert not stage.all("HEALTHCHECK"), f"stage {stage.name} defines a HEALTHCHECK"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_final_stage_runs_as_numeric_non_root(dockerfile: Dockerfile, target: str) -> None:
    user = dockerfile.stage(target).last("USER")
    assert user is not None, f"{target} has no USER (it would run as root)"
    uid, _, gid = user.partition(":")
    # runAsNonRoot can only be verified by the kubelet for a numeric USER.
    assert uid.isdigit() and int(uid) != 0, f"{target} USER {user!r} is not a numeric non-root uid"
    assert not gid or (gid.isdigit() and int(gid) != 0), f"{target} group {gid!r} must be numeric, non-zero"
    # Nothing after USER may switch back.
    keywords = [i.keyword for i in dockerfile.stage(target).instructions]
    assert "USER" not in keywords[keywords.index("USER") + 1 :]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_entrypoint_is_the_declared_console_script(
    dockerfile: Dockerfile, console_scripts: dict[str, str], target: str
) -> None:
    entrypoint = dockerfile.stage(target).last("ENTRYPOINT")
    assert entrypoint is not None
    argv = exec_form(entrypoint)
    assert argv == TARGETS[target][1]
    assert argv[0] in console_scripts, f"{argv[0]} is not in pyproject.toml [project.scripts]"
    assert dockerfile.stage(target).last("CMD") is None, "CMD would be appended to the entrypoint"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_final_stage_is_slim_and_holds_only_the_venv(dockerfile: Dockerfile, target: str) -> None:
    stage = dockerfile.stage(target)
    base = dockerfile.resolve(stage.base)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base
    for run in stage.all("RUN"):
        assert not BUILD_TOOLS.search(run), f"{target} installs build tools: {run}"
    # Stronger still: a final stage runs nothing, so nothing can leave tools or caches behind.
    assert not stage.all("RUN"), f"{target} must not RUN anything: build in the builder stages"
    copies = stage.all("COPY") + stage.all("ADD")
    assert copies, f"{target} copies nothing"
    for copy in copies:
        words = shlex.split(copy)
        assert any(w.startswith("--from=") for w in words), f"{target} copies from the build context"
        assert words[-2:] == ["/opt/venv", "/opt/venv"], f"{target} copies more than the venv: {copy}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_final_stage_venv_has_the_right_extra(dockerfile: Dockerfile, target: str) -> None:
    copy = shlex.split(dockerfile.stage(target).all("COPY")[0])
    source_stage = next(w for w in copy if w.startswith("--from=")).removeprefix("--from=")
    installs = " ".join(dockerfile.stage(source_stage).all("RUN"))
    extra = TARGETS[target][0]
    assert f"[{extra}]" in installs, f"{source_stage} does not install the [{extra}] extra"
    other = ({"operator", "runtime"} - {extra}).pop()
    assert f"[{other}]" not in installs, f"{source_stage} also installs the [{other}] extra"
    assert "/opt/venv" in installs


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_final_stage_environment_and_ports(dockerfile: Dockerfile, target: str) -> None:
    stage = dockerfile.stage(target)
    env = " ".join(stage.all("ENV"))
    assert re.search(r"\bPYTHONDONTWRITEBYTECODE=1\b", env)
    assert re.search(r"\bPYTHONUNBUFFERED=1\b", env)  # logs reach kubectl logs immediately
    assert "/opt/venv/bin" in env
    exposed = {port for args in stage.all("EXPOSE") for port in args.split()}
    assert exposed == TARGETS[target][2]


def test_pip_never_leaves_a_cache(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        env = " ".join(stage.all("ENV"))
        for run in stage.all("RUN"):
            if "pip install" in run or ("pip" in run and " install " in run):
                assert "--no-cache-dir" in run or "PIP_NO_CACHE_DIR=1" in env, run


def test_dockerignore_keeps_local_state_out_of_the_context() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".cluster", ".git", "tests", "bench"} <= entries


def test_build_context_paths_are_not_ignored(dockerfile: Dockerfile) -> None:
    # COPY of an ignored path fails the build; check every source the builder copies.
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for stage in dockerfile.stages:
        for copy in stage.all("COPY"):
            words = [w for w in shlex.split(copy) if not w.startswith("--")]
            if any(w.startswith("--from=") for w in shlex.split(copy)):
                continue
            for source in words[:-1]:
                assert source.rstrip("/") not in ignored, f"{source} is excluded by .dockerignore"
                # pyproject.toml names README.md as the readme: the wheel build needs it too.
                assert (REPO / source).exists(), f"the image build copies {source}, which does not exist"


def test_every_stage_builds_from_slim_python_or_an_earlier_stage(dockerfile: Dockerfile) -> None:
    seen: set[str] = set()
    for stage in dockerfile.stages:
        base = dockerfile.resolve(stage.base)
        assert base in seen or re.fullmatch(r"python:3\.11-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base), base
        if stage.name:
            seen.add(stage.name)
