"""The shared fixtures themselves work: a real node starts, stops, restarts."""

import pytest

from tests.nodeproc import run_cli

pytestmark = pytest.mark.timeout(60)


def test_node_fixture_serves_and_restarts(node, archive_key):
    status = node.status()
    assert status.node_id == node.node_id
    assert bytes.fromhex(archive_key.archive_id) in list(status.hosted_archive_ids)
    node.restart()
    assert node.status().node_id == node.node_id
    assert node.stop() == 0
    assert "stopped cleanly" in node.logs()


def test_run_cli_reports_exit_code_and_output(archive_key):
    code, out, err = run_cli("key", "show", archive_key.path)
    assert (code, out.strip(), err) == (0, archive_key.archive_id, "")
    code, out, err = run_cli("key", "show", "/nonexistent/key")
    assert code != 0 and "does not exist" in err
