"""What ships in deploy/: the systemd unit (systemd-analyze verify and security) and the
Prometheus alerting rules (promtool check and unit tests, and every metric they use is one a
real node exports). Skipped, saying why, only where systemd-analyze or promtool is absent;
CI installs promtool (scripts/test.sh)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.healthcluster import start_with_metrics
from tests.nodeproc import NodeProcess, entry_point

pytestmark = pytest.mark.timeout(120)

DEPLOY = Path(__file__).parents[2] / "deploy"
UNIT = DEPLOY / "systemd" / "samizdat-node.service"
RULES = DEPLOY / "prometheus" / "samizdat-rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "samizdat-rules.test.yml"
DASHBOARD = DEPLOY / "prometheus" / "samizdat-dashboard.json"
INSTALLED_PATH = "/usr/local/bin/samizdat-node"
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 (locked down) .. 10 (exposed); now 1.0


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed here (CI installs it); cannot check {name} output")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this installation's samizdat-node (verify checks
    that the program exists)."""
    text = UNIT.read_text()
    assert INSTALLED_PATH in text
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace(INSTALLED_PATH, entry_point("samizdat-node")))
    return copy


def test_systemd_unit_verifies_clean(unit_here: Path) -> None:
    result = run(tool("systemd-analyze"), "verify", str(unit_here))
    assert result.returncode == 0 and result.stdout + result.stderr == "", result


def test_systemd_unit_is_sandboxed(unit_here: Path) -> None:
    result = run(tool("systemd-analyze"), "security", "--offline=yes", str(unit_here))
    if "--offline" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline (systemd < 250)")
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert found, result
    assert float(found.group(1)) <= MAX_EXPOSURE, result.stdout
    text = UNIT.read_text()
    for setting in (
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/samizdat",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "User=samizdat",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
    ):
        assert setting in text, setting


def test_alerting_rules_check_and_unit_tests_pass() -> None:
    promtool = tool("promtool")
    checked = run(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked
    tested = run(promtool, "test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = set(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.M))
    tests = RULE_TESTS.read_text()
    for alert in alerts:  # each alert has a case that fires and one that stays silent
        cases = re.findall(rf"alertname: {alert}\n\s*exp_alerts:(.*)", tests)
        assert any(c.strip() == "[]" for c in cases), f"{alert}: no silent case"
        assert any(c.strip() == "" for c in cases), f"{alert}: no firing case"


def exported_names(port: int) -> set[str]:
    """Every sample name a node's /metrics can carry (also for families without samples)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    return {
        family.name + suffix
        for family in text_string_to_metric_families(text)
        for suffix in suffixes.get(family.type, [""])
    }


def test_rules_and_dashboard_use_only_metrics_a_node_exports(
    node_factory: Callable[..., NodeProcess],
) -> None:
    _node, port = start_with_metrics(node_factory)
    exported = exported_names(port)
    used = set(re.findall(r"\bsamizdat_[a-z_]+", RULES.read_text()))
    assert len(used) >= 10, used
    assert used <= exported, used - exported
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    shown = set(re.findall(r"\bsamizdat_[a-z_]+", exprs))
    assert len(shown) >= 10 and shown <= exported, shown - exported
