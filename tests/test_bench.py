"""Smoke test of `python -m bench`: a tiny run writes bench.json with every figure (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.figures import STEP_KEYS, recommend
from bench.realistic import ideal_s, mean_latency_s
from orchestrator.settings import DEFAULT_CONCURRENCY


def test_tiny_bench_writes_every_key(tmp_path: Path) -> None:
    """A 20-identity run (1 ms latency, no Azure CLI) writes every step with every figure, and the links land."""
    out = tmp_path / "bench.json"
    code = main([
        "--n", "20", "--latency-ms", "1", "--sequential-n", "3", "--split-n", "3", "--sweep", "4",
        "--sweep-n", "5", "--scale-rows", "200", "--no-seeds", "--quiet", "--out", str(out),
        "--realistic-n", "4", "--realistic-sweep", "4", "--realistic-sweep-n", "4",
        "--lighthouse-n", "9", "--workers-n", "6", "--scale-link-n", "7", "--floor-n", "20", "--floor-rounds", "1",
        "--workdir", str(tmp_path / "work"),
    ])
    assert code == 0
    doc = json.loads(out.read_text())
    steps = doc["steps"]
    flat = {
        "link": steps["link"], "rerun": steps["rerun"], "sequential": steps["sequential"],
        "seeds_way": steps["seeds_way"], "inventory_scale": steps["inventory_scale"],
        "report_scale": steps["report_scale"], "sweep-4": steps["concurrency_sweep"]["4"],
        **{f"cpu-{k}": v for k, v in steps["cpu_by_credential"].items()},
    }
    assert set(steps["cpu_by_credential"]) == {"baseline", "secret", "certificate-pem", "certificate-pfx",
                                                "federation"}
    assert steps["cpu_by_credential"]["federation"]["statuses"] == {"linked": 3}
    for name, step in flat.items():
        missing = [k for k in STEP_KEYS if k not in step]
        assert not missing, f"{name} lacks {missing}"
    assert steps["link"]["statuses"] == {"linked": 20}
    assert steps["rerun"]["statuses"] == {"already_linked": 20}
    assert steps["rerun"]["writes"] == 0
    assert steps["link_one_process"]["statuses"] == {"linked": 20}
    assert steps["link"]["requests_per_identity"] > steps["rerun"]["requests_per_identity"] > 0
    assert steps["link"]["emulator_cpu_s"] is not None
    assert steps["seeds_way"]["skipped"] is True
    assert steps["inventory_scale"]["identities"] == 200
    for kind in ("secret", "certificate-pem", "certificate-pfx", "federation"):
        assert "marginal_cpu_ms_per_identity" in steps["cpu_by_credential"][kind]
    assert set(doc["ratios"]) >= {"link_vs_seeds_throughput", "link_vs_sequential_throughput",
                                  "latency_bound_ideal_s", "link_measured_s"}
    assert doc["ratios"]["latency_bound_ideal_s"] is not None
    assert len(doc["targets"]) == 10
    scale_link = steps["scale_link"]  # every default: the whole tree's memory is its target
    assert scale_link["statuses"] == {"linked": 7} and scale_link["concurrency"] == DEFAULT_CONCURRENCY
    target = {t["target"]: t for t in doc["targets"]}["scale_link_tree_rss_mb"]
    assert target["measured"] == scale_link["tree_rss_mb"] >= scale_link["peak_rss_mb"] > 0
    workers = steps["workers"]  # 1 and 2 workers, on the shared machine and (where cgroups allow) under a quota
    for w in ("1", "2"):
        assert workers["shared"][w]["statuses"] == {"linked": 6}
        assert workers["quota"][w].get("skipped") or workers["quota"][w]["statuses"] == {"linked": 6}
    assert workers["shared_ratio_2_vs_1"] is not None
    assert steps["link"]["tree_rss_mb"] >= steps["link"]["peak_rss_mb"] > 0
    assert doc["recommended_concurrency"]["value"] == 4
    real = steps["realistic"]
    assert real["link"]["statuses"] == {"linked": 4} and real["sweep"]["4"]["statuses"] == {"linked": 4}
    assert real["link"]["latency_bound_ideal_s"] > 0 and real["within_5pct_of_best"]["value"] == 4
    lighthouse = steps["lighthouse"]  # 9 delegated subscriptions of 3 customers, all recognised
    assert (lighthouse["subscriptions"], lighthouse["customers"], lighthouse["exit_code"]) == (9, 3, 0)
    assert lighthouse["verdicts"] == {"recognised": 9}
    assert lighthouse["requests"] >= 9 + 1 and lighthouse["wall_s"] > 0
    floor = steps["floor"]  # each kind sent 20 times both ways, each batch answered by exactly 20 requests
    assert set(floor["kinds"]) == {"token", "secret", "arm_get"}
    assert all(v["sdk_us"] > 0 and v["raw_us"] > 0 for v in floor["kinds"].values())
    assert floor["requests_counted"] == 3 * 2 * 20
    assert floor["new_link_sdk_ms"] > 0 and floor["new_link_raw_ms"] > 0
    assert not (tmp_path / "work").exists()  # the work directory (journals, world, logs) is removed


def test_only_runs_the_named_steps_and_records_the_others_as_skipped(tmp_path: Path) -> None:
    """`--only scale` starts no emulator: the link steps are recorded as skipped, the scale figures are there."""
    out = tmp_path / "bench.json"
    assert main(["--n", "5", "--only", "scale", "--scale-rows", "50", "--quiet", "--out", str(out)]) == 0
    steps = json.loads(out.read_text())["steps"]
    assert steps["link"]["skipped"] is True and steps["scale_link"]["skipped"] is True and "realistic" not in steps
    assert steps["inventory_scale"]["identities"] == 50


def test_the_scale_link_runs_at_the_concurrency_given_and_its_table_row_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--scale-link-concurrency 3` links at c=3 (what a higher default would cost at scale), and the table names
    it instead of "every default"."""
    out = tmp_path / "bench.json"
    assert main(["--n", "5", "--only", "scale-link", "--latency-ms", "1", "--scale-link-n", "6",
                 "--scale-link-concurrency", "3", "--no-seeds", "--out", str(out)]) == 0
    scale_link = json.loads(out.read_text())["steps"]["scale_link"]
    assert scale_link["concurrency"] == 3 and scale_link["statuses"] == {"linked": 6}
    printed = capsys.readouterr().out
    assert "link at scale (c=3)" in printed and "every default" not in printed


def test_realistic_ideal_is_the_mean_latency_of_every_request_over_concurrency() -> None:
    """Requests counted per service (ARM split into reads and writes by the write counter) × each class's mean
    log-normal latency, ÷ concurrency."""
    means = mean_latency_s()
    before = {"counters": {"entra": {"200": 1}}, "writes_total": 0}
    after = {"counters": {"entra": {"200": 11}, "keyvault": {"200": 10}, "arm": {"200": 35, "404": 5}},
             "writes_total": 10}
    expected = (10 * means["entra"] + 10 * means["keyvault"] + 30 * means["arm_read"] + 10 * means["arm_write"]) / 4
    assert ideal_s(before, after, 4) == round(expected, 2)
    assert means["arm_write"] > 2.0  # the long tail puts the mean above the 2 s median


def test_recommend_picks_the_smallest_concurrency_near_the_best() -> None:
    """The recommended concurrency is the smallest whose throughput is within 5 % of the best one."""
    sweep = {"16": {"identities_per_s": 100.0}, "32": {"identities_per_s": 190.0},
             "64": {"identities_per_s": 199.0}, "128": {"identities_per_s": 200.0}}
    assert recommend(sweep)[0] == 32


def test_measured_peak_is_the_childs_own_not_the_forked_driver() -> None:
    """A large benchmark driver does not inflate its child's peak: wait4's ru_maxrss keeps the pre-exec
    high-water mark of the fork, so the child's own VmHWM is the figure (the 757 MB "parent peak" at 100k was the
    driver's world, forked)."""
    import sys as _sys

    from bench.measure import clean_env, run_measured

    ballast = bytearray(200 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    m = run_measured([_sys.executable, "-c", "import time; time.sleep(0.3)"], env=clean_env())
    del ballast
    assert m.exit_code == 0 and 0 < m.peak_rss_mb < 100
