"""`python -m bench.run [--quick] [--only fleet,steady,latency,runtime] [--sizes 100,500,1000]`

Runs the benchmarks on the benchmark's own local control plane (AGENTFLEET_CLUSTER_DIR, default
<repo>/.bench-cluster, started by `make bench`) and writes bench/results/latest.json and latest.md.
Benchmarks report; they never fail on a timing."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.integration.operator_harness import OperatorProcess, install_crds_and_rbac

from . import fleet as fleet_bench
from .baseline import run_baseline
from .kube import delete_bench_namespaces, http_client, kubectl, serviceaccount_kubeconfig
from .machine import machine_info
from .runtime_load import run_runtime

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SECTIONS = ("fleet", "steady", "latency", "runtime")

TARGETS = {
    "fleet_ratio": ("operator/baseline time at N=1000", "<= 1.5"),
    "steady_writes": ("writes in steady state (idle + resync, leases apart)", "0"),
    "peak_rss": ("operator peak RSS at N=1000", "<= 250 MiB"),
    "change_p95": ("change latency p95 at N=1000", "<= 3 s"),
    "runtime_rps": ("runtime req/s on one core, rules + Redis", ">= 800"),
    "added_p99": ("runtime added latency p99 over a 50 ms LLM", "<= 15 ms"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short idle period (also BENCH_QUICK=1)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--sizes", default="100,500,1000", help="fleet sizes (the largest is used by steady/latency)")
    parser.add_argument("--idle", type=float, default=None, help="steady-state idle seconds (300; quick: 30)")
    parser.add_argument("--edits", type=int, default=20, help="prompt edits for the change latency")
    parser.add_argument("--out", default=str(RESULTS / "latest"), help="results path without extension")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def guarded(results: dict[str, Any], key: str, step: Callable[[], Awaitable[Any]]) -> Any:
    """A failed section is recorded with its error; the other sections still run."""
    try:
        value = await step()
        results[key] = value
        return value
    except Exception as exc:  # a benchmark reports; it does not stop at the first failure
        log(f"{key} failed: {exc!r}")
        results[key] = {"error": repr(exc), "traceback": traceback.format_exc()[-2000:]}
        return None


async def operator_sections(args: argparse.Namespace, results: dict[str, Any], only: set[str]) -> None:
    cluster_dir = Path(os.environ.get("AGENTFLEET_CLUSTER_DIR", ROOT / ".bench-cluster"))
    admin_kc = os.environ.get("BENCH_KUBECONFIG", str(cluster_dir / "kubeconfig"))
    if not Path(admin_kc).exists():
        raise SystemExit(
            f"no kubeconfig at {admin_kc}: start the benchmark cluster first "
            "(AGENTFLEET_CLUSTER_DIR=.bench-cluster hack/cluster.sh up, or `make bench`)"
        )
    work = cluster_dir / "bench"
    work.mkdir(parents=True, exist_ok=True)

    def kubectl_(*args: str, stdin: str | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
        return kubectl(admin_kc, *args, stdin=stdin, check=check)

    install_crds_and_rbac(kubectl_)
    sa_kc = serviceaccount_kubeconfig(
        admin_kc, "agentfleet-system", "agentfleet-operator", work / "operator.kubeconfig"
    )
    sizes = [int(s) for s in args.sizes.split(",") if s]
    idle = args.idle if args.idle is not None else (30.0 if args.quick else 300.0)
    admin = http_client(admin_kc)
    writer = http_client(sa_kc)
    operator: OperatorProcess | None = None
    try:
        log(f"clean-up took {await delete_bench_namespaces(admin):.1f}s")
        fleet_results: dict[str, Any] = results.setdefault("fleet", {})
        wanted = sizes if "fleet" in only else ([max(sizes)] if only & {"steady", "latency"} else [])
        for size in wanted:
            if "fleet" in only:
                log(f"baseline N={size}")
                await guarded(fleet_results, f"baseline_{size}", lambda size=size: run_baseline(admin, writer, size))
                log(f"baseline N={size}: {fleet_results[f'baseline_{size}']}; cleaning up")
                await delete_bench_namespaces(admin)
            log(f"operator N={size}")
            operator, sampler = fleet_bench.start_operator(sa_kc, work / f"operator-{size}.log")
            value = await guarded(
                fleet_results,
                f"operator_{size}",
                lambda size=size, op=operator, s=sampler: fleet_bench.fleet_operator(admin, op, s, size),
            )
            log(f"operator N={size}: {fleet_results[f'operator_{size}']}")
            base = fleet_results.get(f"baseline_{size}") or {}
            if value and "seconds" in base:
                fleet_results[f"ratio_{size}"] = round(value["seconds"] / base["seconds"], 2)
            if size != max(sizes) or not only & {"steady", "latency"}:
                operator.stop()
                operator = None
                await delete_bench_namespaces(admin)
        if operator is not None and "steady" in only:
            log(f"steady state: {idle:.0f}s idle, then a restart")
            steady = await guarded(
                results, "steady", lambda: fleet_bench.steady_state(operator, sa_kc, work, idle, max(sizes))
            )  # type: ignore[arg-type]
            if steady:
                results["steady"], operator = steady
            log(f"steady: {results['steady']}")
        if operator is not None and "latency" in only:
            log("change latency")
            await guarded(results, "latency", lambda: fleet_bench.change_latency(admin, max(sizes), args.edits))
            log(f"latency: {results['latency']}")
    finally:
        if operator is not None:
            operator.stop()
        try:
            await delete_bench_namespaces(admin)
        finally:
            await admin.aclose()
            await writer.aclose()


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    fleet = results.get("fleet", {})
    largest = max((int(k.split("_")[1]) for k in fleet if k.startswith("operator_")), default=0)

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "MISSED")

    ratio = fleet.get(f"ratio_{largest}")
    at = f" (largest N run: {largest})" if largest != 1000 else ""
    rows.append(
        (
            *TARGETS["fleet_ratio"],
            f"{ratio}{at}" if ratio else "n/a",
            verdict(None if ratio is None or largest < 1000 else ratio <= 1.5),
        )
    )
    op = fleet.get(f"operator_{largest}", {})
    steady = results.get("steady", {})
    peaks = {"fleet": op.get("peak_rss_mib"), "restart/resync": steady.get("resync_peak_rss_mib")}
    peaks = {k: v for k, v in peaks.items() if v is not None}
    rss = max(peaks.values(), default=None)
    rows.append(
        (
            *TARGETS["peak_rss"],
            ", ".join(f"{k} {v} MiB" for k, v in peaks.items()) or "n/a",
            verdict(None if rss is None else rss <= 250),
        )
    )
    if "idle_writes" in steady:
        writes = steady["idle_writes"] + steady["resync_writes"]
        rows.append(
            (
                *TARGETS["steady_writes"],
                f"idle {steady['idle_writes']}, resync {steady['resync_writes']}",
                verdict(writes == 0),
            )
        )
    else:
        rows.append((*TARGETS["steady_writes"], "n/a", "n/a"))
    lat = results.get("latency", {})
    p95 = lat.get("p95_seconds")
    rows.append(
        (
            *TARGETS["change_p95"],
            f"p50 {lat.get('p50_seconds')} s, p95 {p95} s" if p95 else "n/a",
            verdict(None if p95 is None else p95 <= 3),
        )
    )
    rt = results.get("runtime", {})
    rps = rt.get("rules_redis", {}).get("requests_per_second")
    rows.append((*TARGETS["runtime_rps"], f"{rps}" if rps else "n/a", verdict(None if rps is None else rps >= 800)))
    added = rt.get("added_p99_ms")
    rows.append(
        (
            *TARGETS["added_p99"],
            f"p50 {rt.get('added_p50_ms')} ms, p99 {added} ms" if added is not None else "n/a",
            verdict(None if added is None else added <= 15),
        )
    )
    return rows


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# agentfleet benchmarks ({results['finished']}{', quick' if results['quick'] else ''})",
        "",
        f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}, "
        f"kernel {m['kernel']}.",
        "",
        "| target | wanted | measured | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in summary_rows(results)]
    fleet = results.get("fleet", {})
    sizes = sorted({int(k.split("_")[1]) for k in fleet if "_" in k and k.split("_")[1].isdigit()})
    if sizes:
        lines += [
            "",
            "## Fleet",
            "",
            "| N | operator s | baseline s | ratio | requests/agent | writes | peak RSS MiB | CPU s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for n in sizes:
            op, base = fleet.get(f"operator_{n}", {}), fleet.get(f"baseline_{n}", {})
            lines.append(
                f"| {n} | {op.get('seconds', op.get('error', 'n/a'))} | "
                f"{base.get('seconds', base.get('error', 'n/a'))} | {fleet.get(f'ratio_{n}', 'n/a')} | "
                f"{op.get('api_requests_per_agent', 'n/a')} | {op.get('api_writes', 'n/a')} | "
                f"{op.get('peak_rss_mib', 'n/a')} | {op.get('cpu_seconds', 'n/a')} |"
            )
        lines += [
            "",
            "Operator requests by verb: "
            + "; ".join(f"N={n}: {fleet.get(f'operator_{n}', {}).get('api_requests')}" for n in sizes),
        ]
    steady = results.get("steady", {})
    if "idle_writes" in steady:
        lines += [
            "",
            "## Steady state",
            "",
            f"{steady['agents']} Agents Ready, {steady['idle_seconds']:.0f} s idle: requests "
            f"{steady['idle_requests'] or '{}'} ({steady['idle_writes']} writes, leases "
            f"{steady['idle_lease_requests']}). Restart (full re-list and one reconcile each): drained in "
            f"{steady['resync_seconds']} s, requests {steady['resync_requests']} "
            f"({steady['resync_writes']} writes), peak RSS {steady['resync_peak_rss_mib']} MiB, "
            f"CPU {steady['resync_cpu_seconds']} s.",
        ]
    lat = results.get("latency", {})
    if "p50_seconds" in lat:
        lines += [
            "",
            "## Change latency",
            "",
            f"{lat['edits']} prompt edits among {lat['agents']} Agents: p50 "
            f"{lat['p50_seconds']} s, p95 {lat['p95_seconds']} s, max {lat['max_seconds']} s.",
        ]
    rt = results.get("runtime", {})
    if "rules_redis" in rt:
        lines += [
            "",
            "## Runtime (one core)",
            "",
            "| load | conns | req/s | p50 ms | p99 ms | errors |",
            "|---|---|---|---|---|---|",
        ]
        for key, label in (
            ("rules_redis", "rules + Redis"),
            ("rules_redis_c8", "rules + Redis"),
            ("llm_direct", "fake LLM (50 ms) direct"),
            ("llm_via_runtime", "runtime → fake LLM"),
        ):
            r = rt.get(key)
            if r:
                lines.append(
                    f"| {label} | {r['connections']} | {r['requests_per_second']} | {r['p50_ms']} | "
                    f"{r['p99_ms']} | {r['errors']} |"
                )
        lines += ["", f"Added latency: p50 {rt.get('added_p50_ms')} ms, p99 {rt.get('added_p99_ms')} ms."]
    errors = [
        f"{k}: {v['error']}"
        for section in results.values()
        if isinstance(section, dict)
        for k, v in section.items()
        if isinstance(v, dict) and "error" in v
    ]
    if errors:
        lines += ["", "## Errors", "", *[f"- {e}" for e in errors]]
    if results.get("notes"):
        lines += ["", "## Notes", "", *[f"- {n}" for n in results["notes"]]]
    return "\n".join(lines) + "\n"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections: {', '.join(sorted(unknown))}")
    results: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine_info(),
        "sections": sorted(only),
    }
    if only & {"fleet", "steady", "latency"}:
        await operator_sections(args, results, only)
    if "runtime" in only:
        log("runtime")
        await guarded(results, "runtime", lambda: asyncio.to_thread(run_runtime, args.quick))
        log(f"runtime: {results['runtime']}")
    results["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.quick = args.quick or os.environ.get("BENCH_QUICK") == "1"
    results = asyncio.run(main_async(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = out.with_suffix(".json")
    if previous.exists():
        results.setdefault("notes", [])
        merged = json.loads(previous.read_text())
        for key in SECTIONS:  # a partial run (--only) keeps the other sections of the last full one
            if key not in results and key in merged:
                results[key] = merged[key]
                results["notes"].append(f"{key}: carried over from the previous run ({merged.get('finished')})")
    previous.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
