"""``experiment-runner serve`` serves nothing outside its folder, only reads, and asks for a token off loopback."""
import http.client
import os
import shutil
import urllib.parse

import pytest

from experiment_runner.errors import UsageError
from experiment_runner.serve import serve
from serve_runs import api, get, make_sweep


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """served/ holds a run and a symbolic link to outside/secret, a run beside it that must not be served."""
    base = tmp_path_factory.mktemp("trees")
    make_sweep(base / "served" / "sweep")
    make_sweep(base / "outside" / "secret")
    (base / "outside" / "notes.txt").write_text("private")
    os.symlink(base / "outside" / "secret", base / "served" / "link")
    os.symlink(base / "outside" / "notes.txt", base / "served" / "sweep" / "0" / "0" / "stderr.log")
    (base / "outside" / "curves").mkdir()
    (base / "outside" / "curves" / "metrics.jsonl").write_text('{"step": 0, "secret_metric": 42.0}\n')
    os.symlink(base / "outside" / "curves", base / "served" / "sweep" / "99")  # an experiment folder leading out
    return base


@pytest.fixture(scope="module")
def serving(trees):
    with serve(trees / "served") as server:
        yield server


def raw_get(serving, path):
    """The status of a GET of ``path`` exactly as written (no client tidies up ``..``)."""
    connection = http.client.HTTPConnection("127.0.0.1", serving.port, timeout=30)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_only_the_runs_inside_the_folder_are_listed(serving):
    assert [run["run"] for run in api(serving, "runs")["runs"]] == ["sweep"]


@pytest.mark.parametrize("name", ["..", "../outside/secret", "sweep/../../outside/secret", "link", "link/",
                                  "%2e%2e/outside/secret", "", "sweep/0"])
def test_a_run_outside_the_folder_or_no_run_is_a_404(serving, trees, name):
    for endpoint in ("run", "results", "failures", "experiment"):
        status, answer, _ = get(serving.url + f"api/{endpoint}?run={name}&id=0")
        assert status == 404, (endpoint, answer)


def test_an_absolute_path_is_a_404_even_to_a_run_inside(serving, trees):
    for path in (trees / "outside" / "secret", trees / "served" / "sweep"):
        status, _, _ = get(serving.url + "api/run?" + urllib.parse.urlencode({"run": str(path)}))
        assert status == 404


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fserver.py",
                                  "/static/%2e%2e%2f%2e%2e%2fserve%2fserver.py", "/../../etc/passwd",
                                  "/static//etc/passwd", "/static/.", "/static/", "/sweep/run.yaml"])
def test_no_file_outside_the_static_folder_is_served(serving, path):
    status, body = raw_get(serving, path)
    assert status == 404 and b"import" not in body and b"root:" not in body


def test_a_log_that_links_out_of_the_tree_is_not_shown(serving):
    logs = api(serving, "experiment", run="sweep", id=0)["logs"]
    assert "0/stderr.log" not in logs and "private" not in str(logs)
    assert "0/stdout.log" in logs


def test_learning_curves_leave_out_metrics_that_link_out_of_the_tree(serving):
    answer = api(serving, "curves", run="sweep")
    assert "secret_metric" not in str(answer) and "42.0" not in str(answer)


@pytest.mark.parametrize("path", ["/static/a%00b", "/static/app.js%00.png", "/static/%ff%fe"])
def test_a_static_name_with_a_nul_byte_or_no_text_is_a_404_and_the_server_goes_on(serving, path):
    status, _ = raw_get(serving, path)
    assert status == 404
    assert get(serving.url + "api/runs")[0] == 200


def test_a_request_without_an_experiment_id_says_which_parameter_is_missing(serving):
    status, answer, _ = get(serving.url + "api/experiment?run=sweep")
    assert status == 400 and "missing query parameter 'id'" in str(answer)
    status, answer, _ = get(serving.url + "api/results?run=sweep&offset=-1")
    assert status == 400 and "offset=-1 must be 0 or more" in str(answer)


def test_plotly_s_script_is_served_from_the_installed_package(serving):
    status, body, headers = get(serving.url + "static/plotly.min.js")
    assert status == 200 and b"plotly.js" in body[:200]
    assert headers["Content-Type"].startswith("text/javascript") or "javascript" in headers["Content-Type"]


def test_only_get_and_head_are_answered_and_nothing_is_written(serving, trees):
    before = sorted(str(p) for p in trees.rglob("*"))
    connection = http.client.HTTPConnection("127.0.0.1", serving.port, timeout=30)
    for method in ("POST", "PUT", "DELETE"):
        connection.request(method, "/api/runs", body=b"{}")
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 501
    connection.request("HEAD", "/api/runs")
    answer = connection.getresponse()
    assert answer.status == 200 and answer.read() == b"" and int(answer.headers["Content-Length"]) > 0
    connection.close()
    assert sorted(str(p) for p in trees.rglob("*")) == before


# ---------------------------------------------------------------- the access token


def test_a_token_is_needed_for_every_request_when_one_is_set(trees):
    with serve(trees / "served", token="s3cret") as server:
        assert server.url.endswith("/?token=s3cret")
        base = server.url.split("?")[0]
        for path in ("api/runs", "static/plotly.min.js", "", "api/run?run=sweep"):
            status, answer, _ = get(base + path)
            assert status == 403
        assert get(base + "api/runs?token=wrong")[0] == 403
        assert get(base + "api/runs", {"Authorization": "Bearer wrong"})[0] == 403
        assert get(base + "api/runs?token=s3cret")[0] == 200
        assert get(base + "api/runs", {"Authorization": "Bearer s3cret"})[0] == 200
        status, _, headers = get(base + "api/runs?token=s3cret")
        cookie = headers["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        assert get(base + "api/run?run=sweep", {"Cookie": cookie})[0] == 200


@pytest.mark.parametrize("token", ["", "a;b", "two words", "é"])
def test_a_token_that_could_not_travel_in_the_address_is_refused_before_serving(trees, token):
    with pytest.raises(UsageError, match="the access token must be one or more letters"):
        serve(trees / "served", host="0.0.0.0", token=token)


def test_a_non_loopback_address_makes_a_token_that_the_address_carries(trees):
    with serve(trees / "served", host="0.0.0.0") as server:
        token = urllib.parse.parse_qs(urllib.parse.urlsplit(server.url).query)["token"][0]
        assert len(token) >= 24
        local = f"http://127.0.0.1:{server.port}/"
        assert get(local + "api/runs")[0] == 403
        assert get(local + f"api/runs?token={token}")[0] == 200


def test_loopback_needs_no_token(serving):
    assert "token" not in serving.url
    assert get(serving.url + "api/runs")[0] == 200


def test_a_copied_tree_is_served_from_where_it_is_now(trees, tmp_path):
    shutil.copytree(trees / "served" / "sweep", tmp_path / "moved")
    with serve(tmp_path / "moved") as server:
        assert api(server, "run", run=".")["out_path"] == str((tmp_path / "moved").resolve())


@pytest.mark.parametrize("host, status", [("127.0.0.1:1", 200), ("localhost", 200), ("[::1]:8765", 200),
                                          ("attacker.example:8765", 403), ("127.0.0.1.nip.io", 403)])
def test_without_a_token_only_a_loopback_host_name_is_answered(serving, host, status):
    """A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) gets nothing."""
    assert get(serving.url + "api/runs", {"Host": host})[0] == status
